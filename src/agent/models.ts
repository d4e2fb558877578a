import type { LanguageModel } from 'ai'
import type { Env } from '../config/paths'
import type { Config } from '../config/schema'
import { AppError } from '../errors'
import { createLanguageModel, modelNames, resolveModelName, type ResolvedModel } from './providers'

/** How many failures of a model /api/status keeps. */
const KEPT_FAILURES = 5

export interface ModelReport {
  name: string
  role: 'primary' | 'fallback'
  configured: boolean
  problem?: string
  recent_failures: { at: string; reason: string }[]
  last_success_at: string | null
}

/** One model of `agent.model`: resolved once at start, its client made on first use, its recent outcomes kept. */
export class ModelSlot {
  private client: Promise<LanguageModel> | null = null
  private readonly failures: { at: string; reason: string }[] = []
  private lastSuccessAt: string | null = null

  constructor(
    readonly name: string,
    readonly role: 'primary' | 'fallback',
    readonly resolved: ResolvedModel | AppError,
  ) {}

  /** The AI SDK client, made once (the SDK's provider packages load here, not at start-up). */
  languageModel(): Promise<LanguageModel> {
    if (this.resolved instanceof AppError) return Promise.reject(this.resolved)
    this.client ??= createLanguageModel(this.resolved)
    return this.client
  }

  /** `reason` is already redacted (it is the text of the error the turn reports). */
  failed(at: Date, reason: string) {
    this.failures.push({ at: at.toISOString(), reason })
    if (this.failures.length > KEPT_FAILURES) this.failures.shift()
  }

  succeeded(at: Date) {
    this.lastSuccessAt = at.toISOString()
  }

  report(): ModelReport {
    return {
      name: this.name,
      role: this.role,
      configured: !(this.resolved instanceof AppError),
      ...(this.resolved instanceof AppError ? { problem: this.resolved.message } : {}),
      recent_failures: [...this.failures],
      last_success_at: this.lastSuccessAt,
    }
  }
}

/** The primary model and its fallbacks, in the order a turn tries them. */
export class ModelChain {
  readonly slots: readonly ModelSlot[]
  /** the slots a turn can use: a misconfigured fallback (unknown provider, no key) is skipped */
  readonly usable: readonly ModelSlot[]

  constructor(config: Pick<Config, 'agent' | 'providers'>, env: Env) {
    this.slots = modelNames(config.agent.model).map((name, index) => new ModelSlot(name, index === 0 ? 'primary' : 'fallback', resolveModelName(name, config, env)))
    this.usable = this.slots.filter((slot) => !(slot.resolved instanceof AppError))
  }

  report(): ModelReport[] {
    return this.slots.map((slot) => slot.report())
  }
}

/**
 * Whether a failed model call is worth asking the next model: the provider is down, overloaded, slow,
 * unreachable, refuses our key (429, 408, 5xx, network errors, 401/403) or sent a reply that cannot be read.
 * Other 4xx errors are about the request itself (too long, a parameter the API does not take): the next model
 * would most likely refuse it the same way, so the turn fails with the first model's error instead.
 */
export function isProviderFailure(ai: typeof import('ai'), error: unknown): boolean {
  const cause = ai.RetryError.isInstance(error) ? error.lastError : error
  if (ai.APICallError.isInstance(cause)) {
    const status = cause.statusCode
    return status === undefined || (status >= 200 && status < 300) || status === 401 || status === 403 || status === 408 || status === 429 || status >= 500
  }
  if (!(cause instanceof Error)) return false
  // Connection errors that did not become an APICallError, and replies that are not what the protocol says.
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket|network|fetch failed|JSON|parse|validation/i.test(`${cause.name} ${cause.message}`)
}
