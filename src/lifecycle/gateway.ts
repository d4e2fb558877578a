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
import { typingRenewFromEnv } from '../channels/telegram/sender'
import { InboundQueue } from '../messages/queue'
import { MessageWorker } from '../messages/worker'
import { McpManager } from '../mcp/manager'
import type { Config } from '../config/schema'
import { createLogger, type GatewayLogger } from '../logging/logger'
import { Redactor, secretsOf } from '../logging/redact'
import { Metrics } from '../metrics/recorder'
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
import { BackupSchedule, restoresIn } from '../ops/backup'
import { selfCommand } from './process'
import { withTimeout } from '../util/timeout'
import { configInForce, contentHash, diffConfig, watchConfigFile, type ConfigDiff, type ConfigReport, type ConfigWatch, type ReloadResult } from '../config/reload'
import { readConfigText } from '../config/load'
import { AppError, CliError, ConfigError } from '../errors'
import type { AgentTool } from '../agent/tools'

/** What a started gateway runs, and what a stop drains. */
interface Parts {
  agent: Agent
  worker: MessageWorker
  cron: CronService
  channels: ChannelManager
  mcp: McpManager
  cronJobs: CronJobs
  /** the built-in tools of a config (a reload gives the agent new ones) */
  tools: (config: Config) => AgentTool[]
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
  /**
   * reads the config again as a start would (file, environment, flags): with it the gateway can reload its config
   * (POST /api/config/reload, SIGHUP); without it (a gateway built from a config in code) it cannot
   */
  loadConfig?: () => Config
  /** reload when the config file changes (the foreground run; tests that build a gateway leave it off) */
  watchConfig?: boolean
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
  /** every secret of this run, those retired by a reload or a token rotation included */
  private readonly knownSecrets = new Set<string>()
  private readonly redact = (text: string) => this.redactor.text(text)
  private parts: Parts | null = null
  /** `pricing` as the usage routes read it: a reload changes its entries in place */
  private readonly pricing: Config['pricing']
  private configState: ConfigReport
  /** the hash of the config file's content last read: a watcher event for the same content is not a change */
  private lastHash: string | null = null
  /** the reload under way (reloads run one at a time) */
  private reloading: Promise<unknown> = Promise.resolve()
  private watcher: ConfigWatch | null = null
  private backups: BackupSchedule | null = null

  constructor(readonly options: GatewayOptions) {
    this.dataDir = dataDirOf(options.config, options.configPath)
    this.currentToken = options.config.gateway.auth.token
    this.pricing = { ...options.config.pricing }
    this.configState = { state: 'ok', path: options.configPath, loaded_at: new Date(this.startedAt).toISOString() }
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
    this.redactSecrets()
  }

  /**
   * Gives the redactor the secrets in force, and keeps those a reload or rotation retired: a turn, a delivery or an
   * MCP server started before it may still echo the old key.
   */
  private redactSecrets() {
    for (const secret of [...this.secrets(), ...(this.currentToken ? [this.currentToken] : [])]) this.knownSecrets.add(secret)
    this.redactor.setSecrets(this.knownSecrets)
  }

  private secrets(): string[] {
    const keyVars = Object.values(PRESETS).flatMap((preset) => (preset.keyVar ? [preset.keyVar] : []))
    return secretsOf(this.options.config, this.options.env ?? process.env, keyVars)
  }

  start() {
    const { config, configPath } = this.options
    ensurePrivateDir(this.dataDir)
    const restores = restoresIn(this.dataDir)
    const restoring = restores.find((restore) => restore.running)
    if (restoring) throw new CliError(`A restore is in progress in ${this.dataDir} (xopcbot restore, pid ${restoring.pid}): start the gateway once it has finished.`)
    this.redactSecrets()
    this.logger = createLogger({
      redactor: this.redactor,
      level: config.logging.level,
      console: this.options.console ?? true,
      file: { path: logFileOf(config, this.dataDir), maxBytes: config.logging.maxFileBytes, maxFiles: config.logging.maxFiles },
    })
    const log = this.log
    // A restore that was killed half-way: what it replaced is kept aside; say where, once per start.
    for (const left of restores) log.warn('an interrupted restore left its files here; the data it replaced is in backups/before-restore-*', { path: left.path })
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
      // What GET /metrics exposes: plain counters the parts below report into (prom-client loads on the first scrape).
      const metrics = new Metrics()
      // Test-only: end-to-end tests renew "typing…" more often (see typingRenewFromEnv).
      const typingRenewMs = typingRenewFromEnv(env.XOPCBOT_TEST_TYPING_RENEW_MS)
      if (typeof typingRenewMs === 'string') log.warn(typingRenewMs)
      const senders = new Senders(config.channels, { log, metrics, ...(typeof typingRenewMs === 'number' ? { typingRenewMs } : {}) })
      const cronJobs = new CronJobs({ db, log, defaultTimezone: config.cron.timezone, sender: (name) => senders.find(name) })
      // MCP servers connect in the background once the server listens; their tools join the agent's as they come.
      const mcp = (parts.mcp = new McpManager(config.mcp, { log, redact }))
      const tools = (c: Config) => [timeTool(c.cron.timezone), sendMessageTool(senders), cronTool(cronJobs, (channel) => c.channels[channel]?.tools !== undefined), webFetchTool(c.agent.webFetch, { log })]
      const agent = (parts.agent = new Agent({
        config,
        env,
        store: sessions,
        log,
        redact,
        metrics,
        tools: tools(config),
        mcp,
      }))
      const queue = new InboundQueue({ db, redact, metrics })
      const worker = (parts.worker = new MessageWorker({ queue, agent, sender: (name) => senders.find(name), log }))
      const cronRunner = new CronRunner({ jobs: cronJobs, agent, sender: (name) => senders.find(name), log, redact, metrics })
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
        pricing: this.pricing,
        configState: () => this.configState,
        ...(this.options.loadConfig ? { reloadConfig: (reason: string) => this.reload(reason) } : {}),
        logFile: logFileOf(config, this.dataDir),
        flushLogs: () => this.logger?.file?.flush(),
        logTap: this.logger.tap,
        redact,
        metrics,
      }))
      // Slow model calls and SSE streams must not be cut by the idle timer.
      const idleTimeoutSeconds = config.agent.timeoutMs / 1000 + 15
      this.server = listen(app, { host: config.gateway.host, port: config.gateway.port, maxBodyBytes: config.gateway.maxBodyBytes, idleTimeoutSeconds })
      channels.startAll()
      mcp.start()
      // Both write to the database: a storage fault here must undo the start like any other failure.
      worker.recover()
      cron.start()
      // Each scheduled backup is a child `xopcbot backup`: the copy never holds up this event loop.
      this.backups = BackupSchedule.start(config, { configPath, dataDir: this.dataDir, command: selfCommand(), env, log })
      this.parts = { agent, worker, cron, channels, mcp, cronJobs, tools }
      this.lastHash = this.fileHash()
      if (this.options.watchConfig) this.watchConfig()
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
    this.watcher?.close()
    // A reload under way finishes first: it may be starting a channel or an MCP server that the stop must end.
    await withTimeout(this.reloading, Math.min(5000, budget), undefined)
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
      // Live log readers would hold the server's graceful close open.
      this.logger?.tap.close()
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
    this.watcher?.close()
    this.parts?.mcp.killNow()
    this.server?.stop(true)
    this.closeResources()
  }

  /**
   * Reads the config again and applies what can change while the gateway runs (see config/reload.ts); what needs
   * a restart is reported, logged and left as it is. Reloads run one at a time. An invalid file changes nothing:
   * it is logged, shown in /api/status and thrown as CONFIG_INVALID. With `ifChanged` (the file watcher) a file
   * whose content is the one read last is no change, and resolves to null.
   */
  reload(reason: string, { ifChanged = false }: { ifChanged?: boolean } = {}): Promise<ReloadResult | null> {
    const run = this.reloading.then(() => this.reloadNow(reason, ifChanged))
    this.reloading = run.catch(() => {})
    return run
  }

  private async reloadNow(reason: string, ifChanged: boolean): Promise<ReloadResult | null> {
    const load = this.options.loadConfig
    if (!load) throw new AppError('UNAVAILABLE', 'this gateway was not started from a config file, so it has none to reload')
    if (this.draining || !this.parts) throw new AppError('UNAVAILABLE', 'the gateway is starting or stopping; reload the config once it runs')
    const { configPath } = this.options
    let next: Config
    try {
      const hash = this.fileHash()
      // Unless the last reload failed: a file removed (or unreadable) and put back as it was must clear that state.
      if (ifChanged && hash === this.lastHash && this.configState.state === 'ok') return null
      // A file that was there and is gone is a mistake to report, not an order to fall back to the defaults.
      if (hash === contentHash(null) && this.lastHash !== hash) throw new ConfigError(`config ${configPath}`, ['the file was removed'])
      this.lastHash = hash
      next = load()
    } catch (error) {
      const problem = this.redact(error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message)
      const since = this.configState.state === 'invalid' && this.configState.since ? this.configState.since : new Date().toISOString()
      this.configState = { state: 'invalid', path: configPath, loaded_at: this.configState.loaded_at, error: problem, since }
      this.log.error('config not reloaded: the file is invalid; the gateway keeps running with the config it has', { reason, path: configPath, error: problem })
      throw new AppError('CONFIG_INVALID', problem)
    }
    const diff = diffConfig(this.options.config, next)
    this.options.config = configInForce(this.options.config, next)
    this.configState = { state: 'ok', path: configPath, loaded_at: new Date().toISOString() }
    if (!diff.unchanged) await this.apply(this.options.config, diff)
    const fields = { reason, applied: diff.applied, restartRequired: diff.restart_required }
    if (diff.unchanged) this.log.info('config reloaded: nothing changed', { reason })
    else if (diff.restart_required.length) this.log.warn('config reloaded; some changes take effect only after a restart', fields)
    else this.log.info('config reloaded', fields)
    return { applied: diff.applied, restart_required: diff.restart_required, unchanged: diff.unchanged }
  }

  /** Applies the live part of a reloaded config, part by part; the agent first, so that the next turn uses it. */
  private async apply(config: Config, diff: ConfigDiff) {
    const { agent, channels, mcp, cronJobs, tools } = this.parts!
    const changed = new Set(diff.applied)
    if (changed.has('logging.level')) this.logger!.setLevel(config.logging.level)
    // The secrets before anything is built from them: new keys and tokens are redacted from the first line on.
    this.setToken(config.gateway.auth.token)
    if (changed.has('gateway.cors.origins')) this.app!.setCorsOrigins(config.gateway.cors.origins)
    if (changed.has('pricing')) {
      for (const key of Object.keys(this.pricing)) delete this.pricing[key]
      Object.assign(this.pricing, config.pricing)
    }
    if (changed.has('cron.timezone')) cronJobs.setDefaultTimezone(config.cron.timezone)
    if (diff.agent) agent.reconfigure(config, tools(config))
    if (diff.channels.length) await channels.reconfigure(config.channels, diff.channels)
    if (diff.mcpServers.length) await mcp.reconfigure(config.mcp, diff.mcpServers)
  }

  private fileHash(): string {
    return contentHash(readConfigText(this.options.configPath))
  }

  private watchConfig() {
    const { configPath } = this.options
    try {
      this.watcher = watchConfigFile(configPath, () => void this.reload('file change', { ifChanged: true }).catch(() => {}), {
        onError: (error) => this.log.warn('the config file is no longer watched for changes (SIGHUP and POST /api/config/reload still reload it)', { path: configPath, err: error.message }),
      })
    } catch (error) {
      this.log.warn('the config file is not watched for changes (SIGHUP and POST /api/config/reload still reload it)', { path: configPath, err: (error as Error).message })
    }
  }

  private closeResources() {
    this.backups?.stop()
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
