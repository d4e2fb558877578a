import type { Database } from 'bun:sqlite'
import type { Server } from 'bun'
import { dataDirOf, databasePathOf, logFileOf, type Env } from '../config/paths'
import { Agent } from '../agent/agent'
import { SessionStore } from '../agent/sessions'
import { cronTool, sendMessageTool, timeTool } from '../agent/tools'
import { webFetchTool } from '../agent/web-fetch'
import { CronJobs, CronRunner, CronService } from '../cron/service'
import { ChannelManager } from '../channels/manager'
import { PairingStore } from '../channels/pairing'
import { Senders } from '../channels/senders'
import { backoffFromEnv } from '../channels/supervisor'
import { InboundQueue } from '../messages/queue'
import { MessageWorker } from '../messages/worker'
import { McpManager } from '../mcp/manager'
import type { Config } from '../config/schema'
import { createLogger, type GatewayLogger } from '../logging/logger'
import { Redactor, secretsOf } from '../logging/redact'
import { modelNames, PRESETS } from '../agent/providers'
import { createApp, type App } from '../server/app'
import type { GatewayControl } from '../server/control'
import { InFlight } from '../server/in-flight'
import { listen } from '../server/listen'
import type { TestPlugin } from '../server/test-plugin'
import { openDatabase, StateStore } from '../storage/db'
import { WebhookEventLog } from '../storage/webhook-events'
import { ensurePrivateDir } from '../storage/private-files'
import { VERSION } from '../version'
import { withTimeout } from '../util/timeout'

/** What a started gateway runs, and what a stop drains. */
interface Parts {
  agent: Agent
  worker: MessageWorker
  cron: CronService
  channels: ChannelManager
  mcp: McpManager
}

export interface GatewayOptions {
  config: Config
  configPath: string
  /** write the human-readable log to stderr (foreground runs) */
  console?: boolean
  control?: GatewayControl
  /** routes a test adds (XOPCBOT_TEST_PLUGIN) */
  testPlugin?: TestPlugin | null
  /** the environment providers read their API keys from (default: process.env) */
  env?: Env
}

/**
 * One running gateway: its logger, database and HTTP server. `start` brings them up in order and undoes
 * what it did when a step fails; `stop` drains and closes them, every wait bounded.
 */
export class Gateway {
  readonly startedAt = Date.now()
  readonly dataDir: string
  private draining = false
  private logger: GatewayLogger | null = null
  private db: Database | null = null
  private server: Server<unknown> | null = null
  /** the HTTP app (for tests and tools that inspect the routes) */
  app: App | null = null
  private currentToken: string | null
  private readonly inFlight = new InFlight()
  /** the one redaction of every configured secret: log lines, API errors and stored errors pass through it */
  private readonly redactor = new Redactor()
  private readonly redact = (text: string) => this.redactor.text(text)
  private parts: Parts | null = null

  constructor(readonly options: GatewayOptions) {
    this.dataDir = dataDirOf(options.config, options.configPath)
    this.currentToken = options.config.gateway.auth.token
  }

  get log() {
    return this.logger!.log
  }

  get port() {
    return this.server?.port ?? this.options.config.gateway.port
  }

  get token() {
    return this.currentToken
  }

  /** Applies a new API token at once: the next request is checked against it, and logs redact it. */
  setToken(token: string | null) {
    this.currentToken = token
    this.redactor.setSecrets([...this.secrets(), ...(token ? [token] : [])])
  }

  private secrets(): string[] {
    const keyVars = Object.values(PRESETS).flatMap((preset) => (preset.keyVar ? [preset.keyVar] : []))
    return secretsOf(this.options.config, this.options.env ?? process.env, keyVars)
  }

  start() {
    const { config, configPath } = this.options
    ensurePrivateDir(this.dataDir)
    this.redactor.setSecrets([...this.secrets(), ...(this.currentToken ? [this.currentToken] : [])])
    this.logger = createLogger({
      redactor: this.redactor,
      level: config.logging.level,
      console: this.options.console ?? true,
      file: { path: logFileOf(config, this.dataDir), maxBytes: config.logging.maxFileBytes, maxFiles: config.logging.maxFiles },
    })
    const log = this.log
    const redact = this.redact
    const env = this.options.env ?? process.env
    let parts: Partial<Parts> = {}
    try {
      // Built in one direction: storage; outbound (senders); the cron jobs and their schedule (the cron tool
      // lists, creates and deletes them); what uses them (tools, agent); what feeds the agent (queue and worker,
      // the cron runner, the channels' inbound sources); the HTTP app over all of it. Cron's scheduler meets its
      // runner at `cron.start()`.
      const db = (this.db = openDatabase(databasePathOf(this.dataDir)))
      const sessions = new SessionStore(db)
      const pairing = new PairingStore(db)
      const senders = new Senders(config.channels, { log })
      const cronJobs = new CronJobs({ db, log, defaultTimezone: config.cron.timezone, sender: (name) => senders.find(name) })
      // MCP servers connect in the background once the server listens; their tools join the agent's as they come.
      const mcp = (parts.mcp = new McpManager(config.mcp, { log, redact }))
      const agent = (parts.agent = new Agent({
        config,
        env,
        store: sessions,
        log,
        redact,
        tools: [timeTool(config.cron.timezone), sendMessageTool(senders), cronTool(cronJobs, (channel) => config.channels[channel]?.tools !== undefined), webFetchTool(config.agent.webFetch, { log })],
        mcp,
      }))
      const queue = new InboundQueue({ db, redact })
      const worker = (parts.worker = new MessageWorker({ queue, agent, sender: (name) => senders.find(name), log }))
      const cronRunner = new CronRunner({ jobs: cronJobs, agent, sender: (name) => senders.find(name), log, redact })
      const cron = (parts.cron = new CronService({ jobs: cronJobs, runner: cronRunner }))
      // Test-only: end-to-end tests shorten the channels' reconnect waits (see backoffFromEnv).
      const backoff = backoffFromEnv(env.XOPCBOT_TEST_CHANNEL_BACKOFF_MS)
      if (typeof backoff === 'string') log.warn(backoff)
      const channels = (parts.channels = new ChannelManager(config.channels, {
        ...(backoff && typeof backoff === 'object' ? { backoff } : {}),
        intake: queue,
        senders,
        state: new StateStore(db),
        pairing,
        webhookEvents: new WebhookEventLog(db),
        log,
      }))
      const app = (this.app = createApp({
        version: VERSION,
        startedAt: this.startedAt,
        now: Date.now,
        log,
        isDraining: () => this.draining,
        token: () => this.token,
        maxBodyBytes: config.gateway.maxBodyBytes,
        corsOrigins: config.gateway.cors.origins,
        info: { configPath, dataDir: this.dataDir, host: config.gateway.host, port: config.gateway.port },
        ...(this.options.control ? { control: this.options.control } : {}),
        ...(this.options.testPlugin ? { testPlugin: this.options.testPlugin } : {}),
        inFlight: this.inFlight,
        agent,
        sessions,
        senders,
        channels,
        mcp,
        queue,
        syncTimeoutMs: config.agent.timeoutMs + 30_000,
        cron,
        pairing,
        modelName: modelNames(config.agent.model)[0]!,
        pricing: config.pricing,
        logFile: logFileOf(config, this.dataDir),
        flushLogs: () => this.logger?.file?.flush(),
        redact,
      }))
      // Slow model calls and SSE streams must not be cut by the idle timer.
      const idleTimeoutSeconds = config.agent.timeoutMs / 1000 + 15
      this.server = listen(app, { host: config.gateway.host, port: config.gateway.port, maxBodyBytes: config.gateway.maxBodyBytes, idleTimeoutSeconds })
      channels.startAll()
      mcp.start()
      // Both write to the database: a storage fault here must undo the start like any other failure.
      worker.recover()
      cron.start()
      this.parts = { agent, worker, cron, channels, mcp }
    } catch (error) {
      // Into the log file too: a gateway started in the background has no console, and `gateway logs` is
      // where a failed restart points.
      this.logger?.log.error('gateway failed to start', { pid: process.pid, err: error instanceof Error ? error.message : String(error) })
      void parts.channels?.stopAll()
      void parts.mcp?.stop()
      parts.worker?.stop()
      parts.cron?.stop()
      this.server?.stop(true)
      this.closeResources()
      throw error
    }
    this.log.info('gateway started', { version: VERSION, pid: process.pid, host: config.gateway.host, port: this.port, configPath, dataDir: this.dataDir })
  }

  /**
   * Graceful stop: /health turns "draining" and new requests get 503 while the listener stays open; accepted
   * requests get `shutdownTimeoutMs` to finish; then the server closes. Every wait is bounded.
   */
  async stop(reason: string) {
    if (this.draining) return
    this.draining = true
    const budget = this.options.config.gateway.shutdownTimeoutMs
    this.log.info('gateway stopping', { reason, drainMs: budget, inFlight: this.inFlight.count })
    const parts = this.parts
    if (this.server && parts) {
      const { agent, worker, cron, channels, mcp } = parts
      const server = this.server
      const deadline = Date.now() + budget
      const left = () => Math.max(0, deadline - Date.now())
      // Take in nothing new (polling ends, queued messages wait for the next start), finish what runs.
      worker.stop()
      cron.stop()
      await withTimeout(channels.stopAll(), Math.min(3000, budget), undefined)
      const drained = (await this.inFlight.drained(left())) && (await agent.idle(left())) && (await worker.idle(left())) && (await cron.idle(left()))
      if (!drained) this.log.warn('drain budget exhausted; closing remaining connections', { drainMs: budget, inFlight: this.inFlight.count })
      // After the drain (a turn may still be calling a tool); a stdio server's process is gone when it resolves.
      await withTimeout(mcp.stop(), 3000, undefined)
      // Nothing of ours is pending when drained, so a graceful close is quick; otherwise cut the connections.
      const closed = await withTimeout(server.stop(!drained).then(() => true), 2000, false)
      if (!closed) await withTimeout(server.stop(true), 1000, undefined)
    }
    this.log.info('gateway stopped', { reason })
    this.closeResources()
  }

  /** Last resort on a second Ctrl+C: keep the files consistent, skip the drain. */
  closeNow() {
    this.draining = true
    this.parts?.mcp.killNow()
    this.server?.stop(true)
    this.closeResources()
  }

  private closeResources() {
    this.parts?.cron.stop()
    this.parts?.worker.stop()
    this.server = null
    try {
      this.db?.close()
    } catch {}
    this.db = null
    this.logger?.close()
  }
}
