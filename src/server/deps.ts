import type { LogTap } from '../logging/tap'
import type { UiAssets } from './ui'
import type { Agent } from '../agent/agent'
import type { ConfigReport, ReloadResult } from '../config/reload'
import type { SessionStore } from '../agent/sessions'
import type { ChannelManager } from '../channels/manager'
import type { PairingStore } from '../channels/pairing'
import type { Senders } from '../channels/senders'
import type { CronService } from '../cron/service'
import type { Logger } from '../logging/logger'
import type { McpReport } from '../mcp/manager'
import type { Metrics } from '../metrics/recorder'
import type { InboundQueue } from '../messages/queue'
import type { AuthFailureLimiter } from './auth'
import type { GatewayControl } from './control'
import type { InFlight } from './in-flight'
import type { TestPlugin } from './test-plugin'

/** Everything `createApp` is built from; the route modules take the part they need (a Pick of it). */
export interface AppDeps {
  /** the log file's lines as they are written (GET /api/logs/stream) */
  logTap?: LogTap
  /** the Control UI's bundle (default: loaded on first request) */
  ui?: UiAssets
  version: string
  /** epoch ms when the gateway started */
  startedAt: number
  now: () => number
  log: Logger
  /** true once a graceful stop has begun */
  isDraining: () => boolean
  /** the current API token (read per request, so a rotated token applies at once) */
  token: () => string | null
  maxBodyBytes: number
  corsOrigins: readonly string[]
  info: { configPath: string; dataDir: string; host: string; port: number }
  /** Peer address of a request. Defaults to the socket's address; tests pass their own. */
  peerAddress?: (request: Request) => string | null
  authLimiter?: AuthFailureLimiter
  /** the local control routes; absent in tests that do not need them */
  control?: GatewayControl
  /** routes a test adds (XOPCBOT_TEST_PLUGIN, see test-plugin.ts); never set outside the tests */
  testPlugin?: TestPlugin
  /** counts accepted requests until they are answered (the graceful stop waits for them) */
  inFlight?: InFlight
  /** the assistant and its history; without them the agent and session routes are not mounted */
  agent?: Agent
  sessions?: SessionStore
  /** the channels' outbound halves and the inbound queue; without both the message routes are not mounted */
  senders?: Senders
  queue?: InboundQueue
  /** the channels' inbound halves (state for /api/status; without it the webhook route is not mounted) */
  channels?: ChannelManager
  /** the MCP servers' states, for /api/status */
  mcp?: { report(): Record<string, McpReport> }
  /** how long /api/message/sync waits when the request gives no timeout_ms */
  syncTimeoutMs?: number
  /** scheduled jobs; without it the cron routes are not mounted */
  cron?: CronService
  /** approved chat senders and pending pairing codes; without it the pairing routes are not mounted */
  pairing?: PairingStore
  /** USD per million tokens per model (`pricing`), for the cost estimates of /api/usage */
  pricing?: Record<string, { input: number; output: number }>
  /** agent.model, for /api/status */
  modelName?: string
  /** removes every configured secret from a text (error messages leave through it) */
  redact?: (text: string) => string
  /** the log file, for /api/logs, and how to write out what is buffered */
  logFile?: string
  flushLogs?: () => void
  /** the config file's state, for /api/status (a reload that found it invalid shows here) */
  configState?: () => ConfigReport
  /** reads the config again and applies it (POST /api/config/reload); without it that route is not mounted */
  reloadConfig?: (reason: string) => Promise<ReloadResult | null>
  /** what GET /metrics exposes; the front door counts requests into it. Without it /metrics is not mounted */
  metrics?: Metrics
}
