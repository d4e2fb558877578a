import type { LanguageModel, ModelMessage, ToolSet } from 'ai'
import type { Env } from '../config/paths'
import type { Config } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { storageFaultOf } from '../storage/faults'
import { serialByKey } from '../util/serial'
import { createLanguageModel, resolveModel, type ResolvedModel } from './providers'
import type { SessionStore } from './sessions'
import { timeTool, toolSet, type AgentTool } from './tools'

export interface TurnRequest {
  session: string
  message: string
  /** where the session comes from, for sessions of channel conversations */
  channel?: string | null
  chatId?: string | null
  /** aborted when the client goes away: the model call is cancelled */
  signal?: AbortSignal
  /** streaming: called with each piece of reply text as the model produces it */
  onDelta?: (text: string) => void
  /** runs in the transaction that stores the turn, with the reply */
  onStored?: (reply: string) => void
}

export interface TurnResult {
  reply: string
  session: string
  usage: { inputTokens: number | undefined; outputTokens: number | undefined }
}

/** At most `size` tasks at once; the rest wait in arrival order. */
class Slots {
  private free: number
  private waiting: (() => void)[] = []

  constructor(size: number) {
    this.free = size
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.free++
    }
  }
}

const snippet = (text: string | undefined) => (text ?? '').replace(/\s+/g, ' ').trim().slice(0, 300)

/**
 * The assistant: one model conversation per session, history in SQLite, a bounded tool loop. Channels
 * and cron run their turns through `turn()` as the HTTP API does. Turns of one session run one at a time
 * in arrival order; different sessions run in parallel, at most `agent.concurrency` at once.
 */
export class Agent {
  readonly model: ResolvedModel | AppError
  private sdk: Promise<{ ai: typeof import('ai'); model: LanguageModel; tools: ToolSet }> | null = null
  private readonly available: AgentTool[]
  /** turns by session; `pending` counts those running or waiting (the graceful stop waits for them, streamed ones included) */
  private readonly bySession = serialByKey()
  private readonly slots: Slots
  private readonly log: Logger

  constructor(
    private readonly deps: {
      config: Config
      env: Env
      store: SessionStore
      log: Logger
      tools?: AgentTool[]
      /** strips configured secrets from provider texts that end up in error messages */
      redact?: (text: string) => string
    },
  ) {
    this.model = resolveModel(deps.config, deps.env)
    this.available = deps.tools ?? [timeTool(deps.config.cron.timezone)]
    this.slots = new Slots(deps.config.agent.concurrency)
    this.log = deps.log.withTag('agent')
    if (this.model instanceof AppError) this.log.warn(`the model is not usable: ${this.model.message}`)
  }

  /** Runs a turn after the session's earlier turns. */
  turn(request: TurnRequest): Promise<TurnResult> {
    return this.bySession.run(request.session, () => this.slots.run(() => this.runTurn(request)))
  }

  /** Resolves true once no turn is running or waiting, or false when `timeoutMs` ran out first. */
  idle(timeoutMs: number): Promise<boolean> {
    return this.bySession.idle(timeoutMs)
  }

  private async runTurn(request: TurnRequest): Promise<TurnResult> {
    if (this.model instanceof AppError) throw this.model
    if (request.signal?.aborted) throw new AppError('AGENT_ERROR', 'the request was cancelled by the client before its turn began')
    const { agent } = this.deps.config
    const { provider, baseURL } = this.model
    const { ai, model, tools } = await this.loadSdk(this.model)
    const { generateText, streamText, stepCountIs } = ai
    const started = performance.now()
    const userMessage: ModelMessage = { role: 'user', content: request.message }
    const timeout = AbortSignal.timeout(agent.timeoutMs)
    const abortSignal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout
    const call = {
      model,
      system: agent.systemPrompt,
      messages: [...this.deps.store.history(request.session, agent.historyLimit), userMessage],
      tools,
      stopWhen: stepCountIs(agent.maxSteps),
      maxRetries: agent.maxRetries,
      abortSignal,
    }
    try {
      let text: string
      let finishReason: string
      let responseMessages: ModelMessage[]
      let usage: { inputTokens?: number | undefined; outputTokens?: number | undefined }
      if (request.onDelta) {
        let failure: unknown
        const result = streamText({ ...call, onError: ({ error }) => void (failure ??= error) })
        for await (const part of result.fullStream) {
          if (part.type === 'text-delta') request.onDelta(part.text)
          else if (part.type === 'error') failure ??= part.error
        }
        if (failure) throw failure
        ;[text, finishReason, responseMessages, usage] = await Promise.all([result.text, result.finishReason, result.responseMessages, result.totalUsage])
      } else {
        const result = await generateText(call)
        ;({ text, finishReason, responseMessages } = result)
        usage = result.totalUsage
      }
      if (finishReason === 'tool-calls') {
        throw new AppError('AGENT_ERROR', `the model was still calling tools after agent.maxSteps (${agent.maxSteps}) steps; no answer was produced`)
      }
      try {
        await this.deps.store.appendTurn(request.session, {
          channel: request.channel ?? null,
          chatId: request.chatId ?? null,
          messages: [userMessage, ...responseMessages],
          usage,
          at: new Date().toISOString(),
        }, request.onStored && (() => request.onStored!(text)))
      } catch (error) {
        // Tools act on the world (send a message, create a job): a turn that used one must not run again, so its
        // storage fault is not passed up as retryable — the queue marks the message failed instead.
        const code = storageFaultOf(error)
        if (code && responseMessages.some((m) => m.role === 'tool')) {
          this.log.warn('turn not stored after its tools ran; it is not retried', { session: request.session, code })
          throw new AppError('UNAVAILABLE', `the reply could not be stored (${code}) after its tools had run, so the turn is not repeated; nothing else was kept`)
        }
        throw error
      }
      this.log.debug('turn finished', { session: request.session, ms: Math.round(performance.now() - started), inputTokens: usage.inputTokens, outputTokens: usage.outputTokens })
      return { reply: text, session: request.session, usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens } }
    } catch (error) {
      // A turn whose history could not be written failed in storage, not in the model: it goes up as it is,
      // so the HTTP layer answers 503 "nothing was stored" and the inbound queue and cron retry it.
      const storageFault = storageFaultOf(error)
      if (storageFault) {
        this.log.warn('turn not stored: the database cannot be written right now', { session: request.session, code: storageFault, reason: (error as Error).message })
        throw error
      }
      const appError = this.describeFailure(ai, error, { timedOut: timeout.aborted, cancelled: !!request.signal?.aborted, provider, baseURL })
      this.log.error('turn failed', { session: request.session, provider, model: this.model.modelId, reason: appError.message, err: error })
      throw appError
    }
  }

  /** The AI SDK, the model client and the tools, loaded once, on the first turn. */
  private loadSdk(resolved: ResolvedModel) {
    this.sdk ??= (async () => {
      const ai = await import('ai')
      return { ai, model: await createLanguageModel(resolved), tools: toolSet(this.deps.config, this.available, ai) }
    })()
    return this.sdk
  }

  /** A provider's text for an error message: every configured secret removed first, then shortened. */
  private clip(text: string | undefined): string {
    return snippet(this.deps.redact ? this.deps.redact(text ?? '') : text)
  }

  private describeFailure(ai: typeof import('ai'), error: unknown, context: { timedOut: boolean; cancelled: boolean; provider: string; baseURL: string }): AppError {
    if (error instanceof AppError) return error
    const { agent } = this.deps.config
    if (context.timedOut) return new AppError('AGENT_ERROR', `the agent turn took longer than agent.timeoutMs (${agent.timeoutMs} ms)`, { status: 504 })
    if (context.cancelled) return new AppError('AGENT_ERROR', 'the request was cancelled by the client')
    const { RetryError, APICallError } = ai
    const cause = RetryError.isInstance(error) ? error.lastError : error
    const tries = RetryError.isInstance(error) ? ` (after ${agent.maxRetries + 1} attempts)` : ''
    if (APICallError.isInstance(cause)) {
      const status = cause.statusCode
      if (status === undefined) return new AppError('AGENT_ERROR', `cannot reach the model provider "${context.provider}" at ${context.baseURL}: ${this.clip((cause.cause as Error)?.message ?? cause.message)}${tries}`)
      if (status >= 200 && status < 300) return new AppError('AGENT_ERROR', `the model provider "${context.provider}" sent a reply that could not be understood: ${this.clip(cause.message)}`)
      if (status === 401 || status === 403) return new AppError('AGENT_ERROR', `the model provider "${context.provider}" refused the API key (HTTP ${status}); check providers.${context.provider}.apiKey`)
      if (status === 429) return new AppError('AGENT_ERROR', `the model provider "${context.provider}" is rate-limiting requests (HTTP 429)${tries}; try again later`)
      return new AppError('AGENT_ERROR', `the model provider "${context.provider}" answered HTTP ${status}${tries}: ${this.clip(cause.responseBody) || cause.message}`)
    }
    const message = cause instanceof Error ? cause.message : String(cause)
    if (cause instanceof Error && /JSON|parse|validation|type/i.test(`${cause.name} ${message}`)) {
      return new AppError('AGENT_ERROR', `the model provider "${context.provider}" sent a reply that could not be understood: ${this.clip(message)}`)
    }
    return new AppError('AGENT_ERROR', `the model call failed: ${this.clip(message)}`)
  }
}
