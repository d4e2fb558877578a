import type { LanguageModel } from 'ai'
import type { Env } from '../config/paths'
import { PROVIDER_PRESETS, type Config, type ProviderConfig } from '../config/schema'
import { AppError } from '../errors'
import { outboundFetch } from '../net/outbound'

interface Preset {
  type: 'openai-compatible' | 'anthropic'
  baseURL: string
  /** environment variable with the API key; null for local servers that need none */
  keyVar: string | null
}

/** Provider presets (SPEC §3): where each API lives and which variable usually holds its key. */
export const PRESETS: Record<(typeof PROVIDER_PRESETS)[number], Preset> = {
  openai: { type: 'openai-compatible', baseURL: 'https://api.openai.com/v1', keyVar: 'OPENAI_API_KEY' },
  anthropic: { type: 'anthropic', baseURL: 'https://api.anthropic.com/v1', keyVar: 'ANTHROPIC_API_KEY' },
  openrouter: { type: 'openai-compatible', baseURL: 'https://openrouter.ai/api/v1', keyVar: 'OPENROUTER_API_KEY' },
  deepseek: { type: 'openai-compatible', baseURL: 'https://api.deepseek.com/v1', keyVar: 'DEEPSEEK_API_KEY' },
  groq: { type: 'openai-compatible', baseURL: 'https://api.groq.com/openai/v1', keyVar: 'GROQ_API_KEY' },
  ollama: { type: 'openai-compatible', baseURL: 'http://127.0.0.1:11434/v1', keyVar: null },
  lmstudio: { type: 'openai-compatible', baseURL: 'http://127.0.0.1:1234/v1', keyVar: null },
}

export interface ResolvedModel {
  provider: string
  modelId: string
  baseURL: string
  type: 'anthropic' | 'openai-compatible'
  apiKey: string | undefined
  headers: Record<string, string>
}

/**
 * The AI SDK client of a resolved model. The SDK is loaded here, on the first turn, not at start-up: a
 * gateway that is not talking to a model does not pay for it in start time and memory.
 */
export async function createLanguageModel(resolved: ResolvedModel): Promise<LanguageModel> {
  const { baseURL, apiKey, headers, provider, modelId } = resolved
  // A redirect would re-send the API key to a host nobody configured (SPEC §7): it is a failed call.
  const fetch = ((input: string | URL | Request, init?: RequestInit) => outboundFetch(input, init)) as typeof globalThis.fetch
  if (resolved.type === 'anthropic') {
    const { createAnthropic } = await import('@ai-sdk/anthropic')
    return createAnthropic({ baseURL, apiKey: apiKey ?? 'none', headers, fetch })(modelId)
  }
  const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible')
  return createOpenAICompatible({ name: provider, baseURL, ...(apiKey ? { apiKey } : {}), headers, includeUsage: true, fetch })(modelId)
}

/** The models of `agent.model`, the primary first, then its fallbacks in order (a name given twice is tried once). */
export function modelNames(model: Config['agent']['model']): string[] {
  return typeof model === 'string' ? [model] : [...new Set([model.primary, ...model.fallbacks])]
}

/**
 * The model of `agent.model`'s primary, or an AGENT_ERROR that says exactly what to set.
 * Never throws at start-up: the gateway serves everything else while the model is misconfigured.
 */
export function resolveModel(config: Pick<Config, 'agent' | 'providers'>, env: Env): ResolvedModel | AppError {
  return resolveModelName(modelNames(config.agent.model)[0]!, config, env)
}

/** One model ("<provider>/<model id>") with its provider's settings, or an AGENT_ERROR that says what to set. */
export function resolveModelName(name: string, config: Pick<Config, 'providers'>, env: Env): ResolvedModel | AppError {
  const slash = name.indexOf('/')
  const provider = name.slice(0, slash)
  const modelId = name.slice(slash + 1)
  const preset = (PRESETS as Record<string, Preset | undefined>)[provider]
  const custom: ProviderConfig | undefined = config.providers[provider]
  if (!preset && !custom) {
    return new AppError(
      'AGENT_ERROR',
      `unknown provider "${provider}" in agent.model: use a preset (${PROVIDER_PRESETS.join(', ')}) or add providers.${provider} with "type": "openai-compatible" and a "baseURL"`,
    )
  }
  const type = custom?.type === 'anthropic' ? 'anthropic' : custom?.type ? 'openai-compatible' : preset!.type
  const baseURL = (custom?.baseURL ?? preset?.baseURL)!.replace(/\/+$/, '')
  const apiKey = custom?.apiKey || (preset?.keyVar ? env[preset.keyVar] : undefined) || undefined
  if (!apiKey && preset?.keyVar) {
    return new AppError('AGENT_ERROR', `no API key for provider "${provider}": set ${preset.keyVar} or providers.${provider}.apiKey`)
  }
  return { provider, modelId, baseURL, type, apiKey, headers: custom?.headers ?? {} }
}
