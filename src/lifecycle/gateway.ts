import type { Database } from 'bun:sqlite'
import type { Server } from 'bun'
import { dataDirOf, databasePathOf, logFileOf } from '../config/paths'
import type { Config } from '../config/schema'
import { createLogger, type GatewayLogger } from '../logging/logger'
import { secretsOf } from '../logging/redact'
import { createApp } from '../server/app'
import type { GatewayControl } from '../server/control'
import { listen } from '../server/listen'
import { openDatabase } from '../storage/db'
import { ensurePrivateDir } from '../storage/files'
import { VERSION } from '../version'
import { withTimeout } from './timeout'

export interface GatewayOptions {
  config: Config
  configPath: string
  /** write the human-readable log to stderr (foreground runs) */
  console?: boolean
  control?: GatewayControl
  testHooks?: boolean
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
  private currentToken: string | null

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
    this.logger?.redactor.setSecrets([...secretsOf(this.options.config), ...(token ? [token] : [])])
  }

  start() {
    const { config, configPath } = this.options
    ensurePrivateDir(this.dataDir)
    this.logger = createLogger({
      level: config.logging.level,
      console: this.options.console ?? true,
      file: { path: logFileOf(config, this.dataDir), maxBytes: config.logging.maxFileBytes, maxFiles: config.logging.maxFiles },
    })
    this.logger.redactor.setSecrets(secretsOf(config))
    try {
      this.db = openDatabase(databasePathOf(this.dataDir))
      const app = createApp({
        version: VERSION,
        startedAt: this.startedAt,
        now: Date.now,
        log: this.log,
        isDraining: () => this.draining,
        token: () => this.token,
        maxBodyBytes: config.gateway.maxBodyBytes,
        corsOrigins: config.gateway.cors.origins,
        info: { configPath, dataDir: this.dataDir, host: config.gateway.host, port: config.gateway.port },
        ...(this.options.control ? { control: this.options.control } : {}),
        testHooks: this.options.testHooks ?? false,
      })
      // Slow model calls and SSE streams must not be cut by the idle timer.
      const idleTimeoutSeconds = config.agent.timeoutMs / 1000 + 15
      this.server = listen(app, { host: config.gateway.host, port: config.gateway.port, maxBodyBytes: config.gateway.maxBodyBytes, idleTimeoutSeconds })
    } catch (error) {
      this.closeResources()
      throw error
    }
    this.log.info('gateway started', { version: VERSION, pid: process.pid, host: config.gateway.host, port: this.port, configPath, dataDir: this.dataDir })
  }

  /** Graceful stop: /health turns "draining", new requests get 503, in-flight ones get `shutdownTimeoutMs` to finish. */
  async stop(reason: string) {
    if (this.draining) return
    this.draining = true
    const budget = this.options.config.gateway.shutdownTimeoutMs
    this.log.info('gateway stopping', { reason, drainMs: budget })
    if (this.server) {
      const server = this.server
      const drained = await withTimeout(server.stop(false).then(() => true), budget, false)
      if (!drained) {
        this.log.warn('drain budget exhausted; closing remaining connections', { drainMs: budget })
        await withTimeout(server.stop(true), 1000, undefined)
      }
    }
    this.log.info('gateway stopped', { reason })
    this.closeResources()
  }

  /** Last resort on a second Ctrl+C: keep the files consistent, skip the drain. */
  closeNow() {
    this.draining = true
    this.server?.stop(true)
    this.closeResources()
  }

  private closeResources() {
    this.server = null
    try {
      this.db?.close()
    } catch {}
    this.db = null
    this.logger?.close()
  }
}
