import type { ModelMessage, ToolSet } from 'ai'
import type { Env } from '../config/paths'
import type { Config } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import type { TurnObserver } from '../metrics/recorder'
import { storageFaultOf } from '../storage/faults'
import { serialByKey } from '../util/serial'
import { isProviderFailure, ModelChain, type ModelReport, type ModelSlot } from './models'
import { resolveModel, type ResolvedModel } from './providers'
import type { SessionStore } from './sessions'
import { agentToolFilter, filterToolSet, isMcpToolName, loggedToolSet, mcpToolSet, timeTool, toolMatcher, toolSet, turnScope, type AgentTool, type McpTools, type ToolCallScope } from './tools'

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
  /** the model that answered, "<provider>/<model id>" */
  model: string
  usage: { inputTokens: number | undefined; outputTokens: number | undefined }
}

/** At most `size` tasks at once; the rest wait in arrival order. */
class Slots {
  private free: number
  private waiting: (() => void)[] = []

  constructor(private size: number) {
    this.free = size
  }

  /** A reload's `agent.concurrency`: more slots start waiting tasks now; fewer take effect as running ones end. */
  resize(size: number) {
    this.free += size - this.size
    this.size = size
    while (this.free > 0 && this.waiting.length) {
      this.free--
      this.waiting.shift()!()
    }
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await task()
    } finally {
      // Below zero after a resize to fewer slots: this one is given up instead of passed on.
      const next = this.free < 0 ? undefined : this.waiting.shift()
      if (next) next()
      else this.free++
    }
  }
}

/** One turn across the models of the chain: which one is asked, and what of the turn is shared between them. */
interface Attempt {
  index: number
  /** the setup the turn started with: a reload in the middle of it does not change its model or tools */
  setup?: Setup
  /** `agent.timeoutMs`, for the whole turn whichever models it takes */
  timeout?: AbortSignal
  started?: number
  /** text reached the client: the turn cannot start over on another model */
  streamed?: boolean
  /** a step ended or a tool started: asking another model would run the tools again (a streamed turn starts
   * a tool as soon as its call arrives, before its step ends) */
  stepEnded?: boolean
}

/** What turns run with: the config and what is made of it. A reload swaps it whole (`reconfigure`). */
interface Setup {
  config: Config
  model: ResolvedModel | AppError
  models: ModelChain
  available: AgentTool[]
  /** the built-in tools as the SDK takes them, made on the first turn with this setup */
  builtIn: ToolSet | null
}

/** Today's tokens and the daily budget, for /api/status. */
export interface UsageToday {
  input_tokens: number
  output_tokens: number
  turns: number
  budget: { daily_tokens: number; used: number; exhausted: boolean; resets_at: string } | null
}

/** Midnight UTC after `now`: when the daily budget starts again. */
const nextUtcDay = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1))

const snippet = (text: string | undefined) => (text ?? '').replace(/\s+/g, ' ').trim().slice(0, 300)

/**
 * The assistant: one model conversation per session, history in SQLite, a bounded tool loop. Channels
 * and cron run their turns through `turn()` as the HTTP API does. Turns of one session run one at a time
 * in arrival order; different sessions run in parallel, at most `agent.concurrency` at once.
 */
export class Agent {
  private setup: Setup
  private sdk: Promise<typeof import('ai')> | null = null
  /** the UTC day the budget refusal was last logged (once a day is enough) */
  private budgetLoggedFor: string | null = null
  /**
   * The built-in tools plus the MCP tools of `mcp.version` that agent.tools offers, and per channel with its own
   * `tools` the narrower set: rebuilt only when the MCP tools change, so a turn does one Map lookup.
   */
  private merged: { version: number; builtIn: ToolSet; tools: ToolSet; byChannel: Map<string, ToolSet> } | null = null
  /** the session of the turn a tool call belongs to, for its log line (the tools are built once, not per turn) */
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
      /** the MCP servers' tools, offered besides the built-in ones */
      mcp?: McpTools
      /** strips configured secrets from provider texts that end up in error messages */
      redact?: (text: string) => string
      /** counts turns, their time and tokens by model (GET /metrics) */
      metrics?: TurnObserver
    },
  ) {
    this.setup = this.setupOf(deps.config, deps.tools ?? [timeTool(deps.config.cron.timezone)])
    this.slots = new Slots(deps.config.agent.concurrency)
    this.log = deps.log.withTag('agent')
    this.warnAboutSetup()
  }

  /** the primary model of `agent.model` (its problem when it is misconfigured) */
  get model(): ResolvedModel | AppError {
    return this.setup.model
  }

  /** the primary and the fallbacks, each resolved once; their clients are made on first use */
  get models(): ModelChain {
    return this.setup.models
  }

  /**
   * A reloaded config (and the built-in tools made from it): the next turns use its models, providers, tools and
   * limits; turns under way finish with the setup they started with. A session's turns stay in order across it.
   */
  reconfigure(config: Config, tools: AgentTool[] = this.setup.available) {
    this.setup = this.setupOf(config, tools)
    this.slots.resize(config.agent.concurrency)
    this.warnAboutSetup()
  }

  private setupOf(config: Config, available: AgentTool[]): Setup {
    return { config, model: resolveModel(config, this.deps.env), models: new ModelChain(config, this.deps.env), available, builtIn: null }
  }

  private warnAboutSetup() {
    if (this.model instanceof AppError) this.log.warn(`the model is not usable: ${this.model.message}`)
    for (const slot of this.models.slots.slice(1)) {
      if (slot.resolved instanceof AppError) this.log.warn(`the fallback model ${slot.name} is skipped: ${slot.resolved.message}`)
    }
    this.warnUnknownMcpServers()
  }

  /**
   * An MCP entry of agent.tools or channels.<name>.tools whose server is not in mcp.servers offers nothing:
   * said once at start (not a config error: commands that read only part of the config do not see mcp).
   */
  private warnUnknownMcpServers() {
    const { agent, channels, mcp } = this.setup.config
    const servers = Object.keys(mcp.servers)
    const lists: [string, readonly string[]][] = [['agent.tools', agent.tools], ...Object.entries(channels).flatMap(([name, c]): [string, readonly string[]][] => (c.tools ? [[`channels.${name}.tools`, c.tools]] : []))]
    for (const [path, entries] of lists) {
      for (const entry of entries) {
        if (isMcpToolName(entry) && !servers.some((server) => entry.startsWith(`${server}__`))) {
          this.log.warn(`${path} lists ${JSON.stringify(entry)}, but mcp.servers has no such server (${servers.join(', ') || 'none configured'}); it offers no tool`)
        }
      }
    }
  }

  /** Each model's state for /api/status. */
  modelReport(): ModelReport[] {
    return this.models.report()
  }

  /** Today's (UTC) tokens and, when `agent.budget.dailyTokens` is set, how much of it is used. */
  usageToday(now = new Date()): UsageToday {
    const today = this.deps.store.usage.todayTotals(now)
    const limit = this.setup.config.agent.budget.dailyTokens
    const used = today.input_tokens + today.output_tokens
    return {
      input_tokens: today.input_tokens,
      output_tokens: today.output_tokens,
      turns: today.turns,
      budget: limit === null ? null : { daily_tokens: limit, used, exhausted: used >= limit, resets_at: nextUtcDay(now).toISOString() },
    }
  }

  /** Runs a turn after the session's earlier turns. */
  turn(request: TurnRequest): Promise<TurnResult> {
    return this.bySession.run(request.session, () => this.slots.run(() => this.runTurn(request)))
  }

  /** Resolves true once no turn is running or waiting, or false when `timeoutMs` ran out first. */
  idle(timeoutMs: number): Promise<boolean> {
    return this.bySession.idle(timeoutMs)
  }

  private async runTurn(request: TurnRequest, attempt: Attempt = { index: 0 }): Promise<TurnResult> {
    const setup = (attempt.setup ??= this.setup)
    const chain = setup.models.usable
    // No usable model at all: the primary's problem says what to set.
    if (chain.length === 0) throw setup.models.slots[0]!.resolved as AppError
    if (request.signal?.aborted) throw new AppError('AGENT_ERROR', 'the request was cancelled by the client before its turn began')
    if (attempt.index === 0) {
      this.refuseOverBudget()
      const onDelta = request.onDelta
      if (onDelta) request = { ...request, onDelta: (text) => ((attempt.streamed = true), onDelta(text)) }
    }
    const { agent } = setup.config
    const slot: ModelSlot = chain[attempt.index]!
    const { provider, baseURL, modelId } = slot.resolved as ResolvedModel
    const { ai, tools: builtIn } = await this.loadSdk(setup)
    const model = await slot.languageModel()
    const tools = this.toolsFor(ai, builtIn, request.channel, setup.config)
    const { generateText, streamText, stepCountIs } = ai
    const started = (attempt.started ??= performance.now())
    const userMessage: ModelMessage = { role: 'user', content: request.message }
    const timeout = (attempt.timeout ??= AbortSignal.timeout(agent.timeoutMs))
    // With fallbacks, one model may not take the whole turn's time: a model that hangs leaves time for the next.
    const callTimeoutMs = agent.callTimeoutMs ?? Math.floor(agent.timeoutMs / chain.length)
    const callTimeout = chain.length > 1 ? AbortSignal.timeout(callTimeoutMs) : null
    const abortSignal = request.signal || callTimeout ? AbortSignal.any([timeout, ...(request.signal ? [request.signal] : []), ...(callTimeout ? [callTimeout] : [])]) : timeout
    const call = {
      model,
      system: agent.systemPrompt,
      messages: [...this.deps.store.history(request.session, agent.historyLimit), userMessage],
      tools,
      stopWhen: stepCountIs(agent.maxSteps),
      maxRetries: agent.maxRetries,
      abortSignal,
      onStepEnd: () => void (attempt.stepEnded = true),
    }
    const toolScope: ToolCallScope = { session: request.session, channel: request.channel ?? null, toolStarted: () => void (attempt.stepEnded = true) }
    try {
      let text: string
      let finishReason: string
      let responseMessages: ModelMessage[]
      let usage: { inputTokens?: number | undefined; outputTokens?: number | undefined }
      if (request.onDelta) {
        let failure: unknown
        const onDelta = request.onDelta
        // Read inside the scope too: the stream runs the tools as it is read.
        const result = await turnScope.run(toolScope, async () => {
          const result = streamText({ ...call, onError: ({ error }) => void (failure ??= error) })
          for await (const part of result.fullStream) {
            if (part.type === 'text-delta') onDelta(part.text)
            else if (part.type === 'error') failure ??= part.error
          }
          return result
        })
        if (failure) throw failure
        ;[text, finishReason, responseMessages, usage] = await Promise.all([result.text, result.finishReason, result.responseMessages, result.totalUsage])
      } else {
        const result = await turnScope.run(toolScope, () => generateText(call))
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
          model: slot.name,
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
      slot.succeeded(new Date())
      this.deps.metrics?.turn(slot.name, 'ok', (performance.now() - started) / 1000, { input: usage.inputTokens ?? 0, output: usage.outputTokens ?? 0 })
      this.log.debug('turn finished', { session: request.session, model: slot.name, ms: Math.round(performance.now() - started), inputTokens: usage.inputTokens, outputTokens: usage.outputTokens })
      return { reply: text, session: request.session, model: slot.name, usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens } }
    } catch (error) {
      // A turn whose history could not be written failed in storage, not in the model: it goes up as it is,
      // so the HTTP layer answers 503 "nothing was stored" and the inbound queue and cron retry it.
      const storageFault = storageFaultOf(error)
      if (storageFault) {
        this.log.warn('turn not stored: the database cannot be written right now', { session: request.session, code: storageFault, reason: (error as Error).message })
        this.deps.metrics?.turn(slot.name, 'storage_fault', (performance.now() - started) / 1000)
        throw error
      }
      const cancelled = !!request.signal?.aborted
      const callTimedOut = !!callTimeout?.aborted && !timeout.aborted && !cancelled
      const appError = callTimedOut
        ? new AppError('AGENT_ERROR', `the model ${slot.name} did not answer within ${callTimeoutMs} ms (agent.callTimeoutMs)`, { status: 504 })
        : this.describeFailure(ai, error, { timedOut: timeout.aborted, cancelled, provider, baseURL, agent })
      // Our own refusals (agent.maxSteps) and the client going away say nothing about the model's health.
      if (!cancelled && !(error instanceof AppError)) slot.failed(new Date(), appError.message)
      const next = chain[attempt.index + 1]
      if (next && !timeout.aborted && !cancelled && !attempt.streamed && !attempt.stepEnded && !(error instanceof AppError) && (callTimedOut || isProviderFailure(ai, error))) {
        this.log.warn('model failed; asking the next one', { session: request.session, model: slot.name, next: next.name, reason: appError.message })
        this.deps.metrics?.turn(slot.name, 'fallback', (performance.now() - started) / 1000)
        // The same object: the streaming hook set up for the first model writes into it.
        attempt.index++
        attempt.stepEnded = false
        return this.runTurn(request, attempt)
      }
      this.log.error('turn failed', { session: request.session, provider, model: modelId, reason: appError.message, err: error })
      this.deps.metrics?.turn(slot.name, cancelled ? 'cancelled' : appError.status === 504 ? 'timeout' : 'error', (performance.now() - started) / 1000)
      throw appError
    }
  }

  /** The AI SDK, loaded on the first turn, and the setup's tools, made once per setup (each model's client: ModelSlot). */
  private async loadSdk(setup: Setup) {
    this.sdk ??= import('ai')
    const ai = await this.sdk
    return { ai, tools: (setup.builtIn ??= this.logged(toolSet(setup.config, setup.available, ai))) }
  }

  /**
   * `agent.budget.dailyTokens`: once today's (UTC) input and output tokens reach it, turns are refused with
   * 429 until midnight UTC. The running turns finish: the budget can be passed by the turns that were under way.
   */
  private refuseOverBudget() {
    const limit = this.setup.config.agent.budget.dailyTokens
    if (limit === null) return
    const now = new Date()
    const today = this.deps.store.usage.todayTotals(now)
    const used = today.input_tokens + today.output_tokens
    if (used < limit) return
    const resets = nextUtcDay(now)
    const day = now.toISOString().slice(0, 10)
    if (this.budgetLoggedFor !== day) {
      this.budgetLoggedFor = day
      this.log.warn('daily token budget used up; turns are refused until the next UTC day', { dailyTokens: limit, used, resetsAt: resets.toISOString() })
    }
    throw new AppError('AGENT_ERROR', `the daily token budget (agent.budget.dailyTokens: ${limit}) is used up (${used} tokens today); turns resume at ${resets.toISOString()} (the next UTC day)`, {
      status: 429,
      headers: { 'retry-after': String(Math.ceil((resets.getTime() - now.getTime()) / 1000)) },
    })
  }

  /** The tools of a turn: agent.tools, narrowed by `channels.<channel>.tools` for a channel's turns. */
  private toolsFor(ai: typeof import('ai'), builtIn: ToolSet, channel: string | null | undefined, config: Config): ToolSet {
    const mcp = this.deps.mcp
    const version = mcp ? mcp.version : -1
    if (this.merged?.version !== version || this.merged.builtIn !== builtIn) {
      const mcpTools = mcp ? this.logged(filterToolSet(mcpToolSet(mcp, ai), agentToolFilter(config.agent.tools))) : {}
      this.merged = { version, builtIn, tools: { ...mcpTools, ...builtIn }, byChannel: new Map() }
    }
    const merged = this.merged
    if (!channel) return merged.tools
    let tools = merged.byChannel.get(channel)
    if (!tools) {
      const only = config.channels[channel]?.tools
      tools = only ? filterToolSet(merged.tools, toolMatcher(only)) : merged.tools
      merged.byChannel.set(channel, tools)
    }
    return tools
  }

  private logged(tools: ToolSet): ToolSet {
    return loggedToolSet(tools, this.log, () => turnScope.getStore(), this.deps.redact)
  }

  /** A provider's text for an error message: every configured secret removed first, then shortened. */
  private clip(text: string | undefined): string {
    return snippet(this.deps.redact ? this.deps.redact(text ?? '') : text)
  }

  private describeFailure(ai: typeof import('ai'), error: unknown, context: { timedOut: boolean; cancelled: boolean; provider: string; baseURL: string; agent: Config['agent'] }): AppError {
    if (error instanceof AppError) return error
    const { agent } = context
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
