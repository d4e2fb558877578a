import { defineCommand } from 'citty'
import { z } from 'zod'
import { CliError, ConfigError, ExitCode } from '../../errors'
import { effectiveToken, findGateway, healthOf } from '../../lifecycle/control'
import { removeStaleLock, unverifiedLockMessage } from '../../lifecycle/lock'
import { localUrl } from '../../net/url'
import { configArg, parseFlags, PathFlag } from '../args'
import { displayUrl, formatUptime, maskToken } from '../output'
import { runningOrReport } from './running'

/** A channel as GET /api/status reports it (see ChannelReport). */
const ChannelReport = z.object({
  type: z.string(),
  state: z.string(),
  error: z.string().optional(),
  retry_in_ms: z.number().optional(),
  next_retry_at: z.string().optional(),
  failures: z.number().optional(),
})
type ChannelReport = z.infer<typeof ChannelReport>
/** An MCP server as GET /api/status reports it (see McpReport). */
const McpReport = z.object({ state: z.string(), tools: z.array(z.string()), error: z.string().optional() })
type McpReport = z.infer<typeof McpReport>
const StatusChannels = z.object({ channels: z.record(z.string(), ChannelReport), mcp: z.record(z.string(), McpReport).default({}) })

/** `retrying (next in 8 s): cannot reach api.telegram.org: …`, `failed: …`, `running`. */
export function describeChannel(report: ChannelReport): string {
  if (report.state === 'retrying') {
    const seconds = Math.ceil((report.retry_in_ms ?? 0) / 1000)
    return `retrying (${seconds > 0 ? `next in ${seconds} s` : 'trying now'})${report.error ? `: ${report.error}` : ''}`
  }
  return report.error ? `${report.state}: ${report.error}` : report.state
}

/** `running (3 tools)`, `failed: the server process exited (code 1)`, `starting`. */
function describeMcp(report: McpReport): string {
  if (report.state === 'running') return `running (${report.tools.length} tool${report.tools.length === 1 ? '' : 's'})`
  return report.error ? `${report.state}: ${report.error}` : report.state
}

/** The channels and MCP servers of the running gateway, from its /api/status; a sentence when they cannot be read. */
async function channelsOf(url: string, token: string | null): Promise<z.infer<typeof StatusChannels> | string> {
  try {
    const response = await fetch(`${url}/api/status`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(2000) })
    if (!response.ok) return `GET /api/status answered HTTP ${response.status}`
    const parsed = StatusChannels.safeParse(await response.json())
    return parsed.success ? parsed.data : 'GET /api/status answered without channels'
  } catch (error) {
    return `GET /api/status failed: ${(error as Error).message}`
  }
}

const args = { ...configArg, json: { type: 'boolean', description: 'Machine-readable output' } } as const

export default defineCommand({
  meta: { name: 'status', description: 'Is the gateway running? PID, port, URL, masked token, uptime (exit 3 when not running)' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const target = findGateway(flags.config)
    if (target.state.state === 'unverified') throw new CliError(unverifiedLockMessage(target.lockPath, target.state.info))
    if (flags.json && target.state.state !== 'running') {
      const stale = target.state.state === 'stale' ? target.state : null
      if (stale) removeStaleLock(target.lockPath, stale.info)
      const removed = stale ? { staleLockRemoved: { pid: stale.info?.pid ?? null, ...(stale.other ? { command: stale.other.command } : {}) } } : {}
      console.log(JSON.stringify({ running: false, configPath: target.paths.configPath, ...removed }))
      return ExitCode.NOT_RUNNING
    }
    const info = runningOrReport(target, `❌ Gateway is not running\nConfig: ${target.paths.configPath}\nStart it with: xopcbot gateway`)
    if (!info) return ExitCode.NOT_RUNNING
    // Asked first, answered while the token is worked out (reading the config is most of this command's work).
    const asked = healthOf(info)
    // The token is shown masked; a config whose gateway.auth cannot be read (a ${VAR} not set in this shell)
    // does not make the gateway any less running, so that is a warning, not a failure.
    let token: string | null = null
    let tokenProblem: string | null = null
    try {
      token = effectiveToken(target.paths, info)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      tokenProblem = error.message
      console.error(`⚠️ The token cannot be shown: ${error.message}`)
    }
    const health = await asked
    const uptime = health.uptime ?? Math.floor((Date.now() - Date.parse(info.createdAt)) / 1000)
    const url = displayUrl(info.host, info.port)
    const parts = health.state === 'unreachable' ? 'the gateway does not answer' : await channelsOf(localUrl(info), token)
    const channels = typeof parts === 'string' ? parts : parts.channels
    if (flags.json) {
      console.log(
        JSON.stringify({
          running: true,
          pid: info.pid,
          host: info.host,
          port: info.port,
          url,
          token: token ? maskToken(token) : null,
          uptime,
          health: health.state,
          version: info.version,
          startedAt: info.createdAt,
          configPath: info.configPath,
          supervised: info.supervised,
          channels: typeof channels === 'string' ? null : channels,
          mcp: typeof parts === 'string' ? null : parts.mcp,
        }),
      )
      return ExitCode.OK
    }
    console.log('✅ Gateway is running')
    console.log(`PID: ${info.pid}`)
    console.log(`Port: ${info.port}`)
    console.log(`Uptime: ${formatUptime(uptime)}`)
    if (health.state !== 'healthy') console.log(`⚠️ Health: ${health.state === 'draining' ? 'draining (stopping)' : 'not answering on /health'}`)
    console.log('🌐 Access:')
    console.log(`URL: ${url}`)
    console.log(`Token: ${token ? maskToken(token) : tokenProblem ? '(unknown, see above)' : '(none)'}`)
    console.log('📡 Channels:')
    if (typeof channels === 'string') console.log(`(unknown: ${channels})`)
    else if (!Object.keys(channels).length) console.log('(none configured)')
    for (const [name, report] of typeof channels === 'string' ? [] : Object.entries(channels)) {
      console.log(`${name}${report.type === name ? '' : ` (${report.type})`}: ${describeChannel(report)}`)
    }
    const mcp = typeof parts === 'string' ? {} : parts.mcp
    if (Object.keys(mcp).length) console.log('🧰 MCP servers:')
    for (const [name, report] of Object.entries(mcp)) console.log(`${name}: ${describeMcp(report)}`)
    console.log('📝 Management:')
    console.log('xopcbot gateway stop      # stop the gateway')
    console.log('xopcbot gateway restart   # restart the gateway')
    return ExitCode.OK
  },
})
