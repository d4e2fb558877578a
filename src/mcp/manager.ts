import type { McpConfig, McpServerConfig } from '../config/schema'
import type { Logger } from '../logging/logger'
import { backoffDelay, DEFAULT_BACKOFF, systemTimer, type Backoff, type Timer } from '../channels/supervisor'
import type { McpConnection } from './client'

export type McpState = 'starting' | 'running' | 'failed' | 'disabled'

/** A server as GET /api/status reports it. */
export interface McpReport {
  state: McpState
  /** the names the model sees, `<server>__<tool>` */
  tools: string[]
  error?: string
}

/** An MCP tool as the agent offers it: a JSON Schema for its input, and how to run it. */
export interface McpToolSpec {
  name: string
  description: string
  inputSchema: Record<string, unknown>
  /** never throws: a failure, an error result or a timeout is `{ error }`, which the model reads */
  run(input: unknown, signal?: AbortSignal): Promise<unknown>
}

/** Model APIs accept tool names of 1-64 letters, digits, "_" and "-". */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/

interface Server {
  name: string
  config: McpServerConfig
  state: McpState
  error?: string
  tools: McpToolSpec[]
  connection: McpConnection | null
  failures: number
  /** ends this server's supervision (the gateway's stop, or a reload that removes or changes it) */
  abort: AbortController
  loop: Promise<void> | null
}

/**
 * Keeps a client to every enabled MCP server: connects in the background (servers in parallel), offers their
 * tools as `<server>__<tool>`, and reconnects after a crash or a lost connection with capped exponential
 * backoff. `version` changes whenever the set of tools does, so the agent rebuilds its tool set only then.
 */
export class McpManager {
  private readonly servers = new Map<string, Server>()
  private started = false
  private toolList: McpToolSpec[] = []
  private changes = 0
  private readonly log: Logger
  private readonly backoff: Backoff
  private readonly timer: Timer

  constructor(
    config: McpConfig,
    private readonly deps: { log: Logger; redact?: (text: string) => string; backoff?: Backoff; timer?: Timer },
  ) {
    this.log = deps.log.withTag('mcp')
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF
    this.timer = deps.timer ?? systemTimer
    for (const [name, server] of Object.entries(config.servers)) this.servers.set(name, this.entry(name, server))
  }

  private entry(name: string, config: McpServerConfig): Server {
    return { name, config, state: config.enabled ? 'starting' : 'disabled', tools: [], connection: null, failures: 0, abort: new AbortController(), loop: null }
  }

  /** Changes whenever `tools()` would return a different list. */
  get version(): number {
    return this.changes
  }

  tools(): readonly McpToolSpec[] {
    return this.toolList
  }

  /** Connects to every enabled server in the background; returns at once. */
  start() {
    this.started = true
    for (const server of this.servers.values()) this.launch(server)
  }

  private launch(server: Server) {
    if (!server.config.enabled) return
    server.loop = this.supervise(server).catch((error) => this.log.error('MCP supervisor stopped', { server: server.name, err: error }))
  }

  /**
   * A reloaded config: each changed server on its own — the old one closed (its tools withdrawn; a call of it
   * under way ends with an error result the model reads), the new one connected in the background. Servers
   * whose config is the same are not touched.
   */
  async reconfigure(config: McpConfig, changed: readonly string[]) {
    for (const name of changed) {
      const old = this.servers.get(name)
      if (old) {
        this.servers.delete(name)
        old.abort.abort()
        await old.loop
        this.setTools(old, [])
      }
      const next = Object.hasOwn(config.servers, name) ? config.servers[name] : undefined
      if (!next) continue
      const server = this.entry(name, next)
      this.servers.set(name, server)
      if (this.started) this.launch(server)
    }
  }

  report(): Record<string, McpReport> {
    return Object.fromEntries(
      [...this.servers.values()].map((s) => [s.name, { state: s.state, tools: s.tools.map((t) => t.name), ...(s.error !== undefined ? { error: s.error } : {}) }]),
    )
  }

  /** Closes every client; resolves once every stdio server's process has exited. */
  async stop() {
    this.started = false
    for (const server of this.servers.values()) server.abort.abort()
    await Promise.all([...this.servers.values()].map((server) => server.loop))
  }

  /** The last resort (a second Ctrl+C): kill the processes, wait for nothing. */
  killNow() {
    for (const server of this.servers.values()) {
      server.abort.abort()
      server.connection?.killNow()
    }
  }

  private redact(text: string) {
    return this.deps.redact ? this.deps.redact(text) : text
  }

  private setTools(server: Server, tools: McpToolSpec[]) {
    if (!tools.length && !server.tools.length) return
    server.tools = tools
    this.toolList = [...this.servers.values()].flatMap((s) => s.tools)
    this.changes++
  }

  private async supervise(server: Server) {
    const { signal } = server.abort
    const { connectMcp } = await import('./client')
    let connection: McpConnection | null = null
    while (!signal.aborted) {
      server.state = 'starting'
      try {
        connection = await connectMcp(server.config, signal)
        if (signal.aborted) break
        const listed = await connection.client.listTools({ options: { signal: AbortSignal.any([signal, AbortSignal.timeout(server.config.timeoutMs)]) } })
        if (signal.aborted) break
        server.connection = connection
        server.failures = 0
        server.state = 'running'
        delete server.error
        this.setTools(server, this.toolsOf(server, connection, listed.tools))
        this.log.info('MCP server connected', { server: server.name, tools: server.tools.map((t) => t.name) })
        const reason = await Promise.race([connection.lost, new Promise<null>((resolve) => signal.addEventListener('abort', () => resolve(null), { once: true }))])
        if (reason === null) break
        throw new Error(reason)
      } catch (error) {
        if (signal.aborted) break
        server.failures++
        server.state = 'failed'
        server.error = clip(this.redact(error instanceof Error ? error.message : String(error)), MAX_ERROR_CHARS)
        server.connection = null
        this.setTools(server, [])
        await connection?.close()
        connection = null
        const waitMs = backoffDelay(server.failures, this.backoff)
        this.log.warn('MCP server failed; reconnecting', { server: server.name, reason: server.error, retryInMs: waitMs })
        await this.timer.sleep(waitMs, signal)
      }
    }
    server.connection = null
    await connection?.close()
  }

  private toolsOf(server: Server, connection: McpConnection, listed: { name: string; description?: string | undefined; inputSchema: Record<string, unknown> }[]): McpToolSpec[] {
    const allow = server.config.tools
    if (allow) {
      const missing = allow.filter((name) => !listed.some((t) => t.name === name))
      if (missing.length) this.log.warn('mcp.servers.<name>.tools names tools the server does not have', { server: server.name, missing })
    }
    const tools: McpToolSpec[] = []
    for (const t of listed) {
      if (allow && !allow.includes(t.name)) continue
      const name = `${server.name}__${t.name}`
      if (!TOOL_NAME.test(name)) {
        this.log.warn('MCP tool skipped: its name is not usable as a model tool name (1-64 of A-Z, a-z, 0-9, "_", "-")', { server: server.name, tool: t.name })
        continue
      }
      tools.push({
        name,
        description: t.description ?? `${t.name} (MCP server ${server.name})`,
        inputSchema: { ...t.inputSchema, type: 'object' },
        run: (input, signal) => this.call(server, connection, t.name, input, signal),
      })
    }
    return tools
  }

  private async call(server: Server, connection: McpConnection, tool: string, input: unknown, signal?: AbortSignal): Promise<unknown> {
    const name = `${server.name}__${tool}`
    if (server.connection !== connection) return { error: `the MCP server "${server.name}" is not connected right now (${server.state}); try again later` }
    const { timeoutMs } = server.config
    const timeout = AbortSignal.timeout(timeoutMs)
    const started = performance.now()
    const { resultOf } = await import('./client')
    try {
      const call = connection.client.callTool({ name: tool, arguments: (input ?? {}) as Record<string, unknown>, options: { signal: signal ? AbortSignal.any([timeout, signal]) : timeout } })
      // The timer wins even if the client does not give up on its own.
      const result = await Promise.race([call, new Promise<never>((_, reject) => timeout.addEventListener('abort', () => reject(timeout.reason), { once: true }))])
      this.log.debug('MCP tool call', { tool: name, ms: Math.round(performance.now() - started), isError: !!result.isError })
      const value = resultOf(result)
      return result.isError ? { error: clip(typeof value === 'string' ? value : JSON.stringify(value), MAX_ERROR_CHARS) } : bounded(value)
    } catch (error) {
      const ms = Math.round(performance.now() - started)
      if (timeout.aborted) {
        this.log.warn('MCP tool call timed out', { tool: name, timeoutMs })
        return { error: `the tool ${name} did not answer within ${timeoutMs} ms (mcp.servers.${server.name}.timeoutMs)` }
      }
      const reason = clip(this.redact(error instanceof Error ? error.message : String(error)), MAX_ERROR_CHARS)
      this.log.warn('MCP tool call failed', { tool: name, ms, reason })
      // A Streamable HTTP server that cannot be reached is reconnected like a crashed stdio server.
      if (server.config.transport === 'http' && !signal?.aborted && /fetch|connect|network|ECONN|socket|closed/i.test(reason)) connection.markLost(`connection lost: ${reason}`)
      return { error: `the tool ${name} failed: ${reason}` }
    }
  }
}

/**
 * What a server gives the model is bounded: a result is sent with every later turn of the session (it is stored
 * in its history), and an error text (an HTTP error quotes the whole response body) also lands in the log and
 * in /api/status.
 */
const MAX_RESULT_CHARS = 100_000
const MAX_ERROR_CHARS = 500

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)} […]` : text)

function bounded(value: unknown): unknown {
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  if (text === undefined || text.length <= MAX_RESULT_CHARS) return value
  return `${text.slice(0, MAX_RESULT_CHARS)}\n[cut: the tool returned ${text.length} characters; the first ${MAX_RESULT_CHARS} are shown]`
}
