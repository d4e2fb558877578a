import { isIPv4, isIPv6 } from 'node:net'
import { Cron } from 'croner'
import { z } from 'zod'
import { isTimeZone } from '../util/time-zone'
import { IntFromText } from '../util/schemas'
import { LINE_LEVELS } from '../logging/levels'

export { LINE_LEVELS }

/**
 * The whole configuration file (SPEC §3). Every object is strict: an unknown key is an error with its
 * path, never silently dropped. Nested objects use `.prefault({})` so that their own defaults apply
 * when the section is missing (zod 4's `.default()` would return the value without parsing it).
 */

export const DEFAULT_PORT = 18790
export const PROVIDER_PRESETS = ['openai', 'anthropic', 'openrouter', 'deepseek', 'groq', 'ollama', 'lmstudio'] as const
export const TOOL_NAMES = ['time', 'cron', 'send_message', 'web_fetch'] as const
/**
 * An entry of `agent.tools` or `channels.<name>.tools`: a built-in tool, or MCP tools as "<server>__<tool>"
 * or "<server>__*" (all of that server's). A server missing from `mcp.servers` is only warned about at start
 * (the agent): commands that load part of the config do not see `mcp`.
 */
const MCP_TOOL_ENTRY = /^[A-Za-z0-9_-]{1,32}__(?:\*|[^*\s]+)$/
export const ToolEntry = z.string().superRefine((entry, ctx) => {
  if (entry.includes('__')) {
    if (!MCP_TOOL_ENTRY.test(entry)) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} is not an MCP tool: write "<server>__<tool>" or "<server>__*" (a server name of A-Z, a-z, 0-9, "_" and "-"; "*" only as the whole tool part)` })
    }
  } else if (!(TOOL_NAMES as readonly string[]).includes(entry)) {
    ctx.addIssue({ code: 'custom', message: `unknown tool ${JSON.stringify(entry)}: the built-in tools are ${TOOL_NAMES.join(', ')}; MCP tools are written "<server>__<tool>" or "<server>__*"` })
  }
})

/** What `logging.level` may be: a line level, or `silent` for none. */
export const LOG_LEVELS = ['silent', ...LINE_LEVELS] as const


const isOrigin = (value: string) => {
  try {
    return new URL(value).origin === value
  } catch {
    return false
  }
}

export const Token = z
  .string()
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
  .min(8, 'must be at least 8 characters')
  .max(512, 'must be at most 512 characters')
export type Token = z.infer<typeof Token>

export const Port = z.int('must be a whole number').min(1, 'must be from 1 to 65535').max(65535, 'must be from 1 to 65535')
/** A port given as text (`--port`, XOPCBOT_GATEWAY_PORT). */
export const PortFromText = IntFromText('must be a whole number from 1 to 65535').pipe(Port)
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/**
 * Why `host` cannot be bound to, or null when it can be: an IPv4 address (four numbers 0-255), an IPv6 address
 * (optionally in brackets, with a zone such as `%eth0`) or a host name. A name whose last part is a number must
 * be an IPv4 address (no top-level domain is numeric), so "999.1.1.1" is refused here instead of by the resolver.
 */
export function hostProblem(host: string): string | null {
  if (host.includes(':') || host.startsWith('[')) {
    const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
    return isIPv6(inner) ? null : 'is not a valid IPv6 address (e.g. "::1" or "::")'
  }
  const labels = (host.endsWith('.') ? host.slice(0, -1) : host).split('.')
  if (/^\d+$/.test(labels.at(-1)!)) {
    if (isIPv4(host)) return null
    const tooBig = labels.find((label) => /^\d+$/.test(label) && Number(label) > 255)
    if (labels.length === 4 && tooBig) return `is not a valid IPv4 address: ${tooBig} is more than 255`
    return 'is not a valid IPv4 address (four numbers from 0 to 255 without leading zeros, e.g. "127.0.0.1")'
  }
  if (host.length > 253 || !labels.every((label) => HOST_LABEL.test(label))) {
    return 'must be an IP address or a host name (e.g. "127.0.0.1", "0.0.0.0", "::1", "localhost"; a name is letters, digits and "-", in parts separated by dots)'
  }
  return null
}

export const Host = z
  .string()
  .min(1, 'must not be empty')
  .superRefine((host, ctx) => {
    if (host === '') return
    const problem = hostProblem(host)
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  })

export const GatewayConfig = z.strictObject({
  host: Host.default('0.0.0.0').describe('Address the HTTP server binds to.'),
  port: Port.default(DEFAULT_PORT).describe('TCP port of the REST API.'),
  auth: z
    .strictObject({
      token: Token.nullable()
        .default(null)
        .describe('API token. When set, every /api/* request needs "Authorization: Bearer <token>". XOPCBOT_GATEWAY_TOKEN overrides it.'),
    })
    .prefault({}),
  cors: z
    .strictObject({
      origins: z
        .array(z.string().refine(isOrigin, 'must be an origin such as "https://app.example.com" (scheme, host, optional port; no path)'))
        .default([])
        .describe('Browser origins allowed to call the API. Empty: no CORS headers at all.'),
    })
    .prefault({}),
  maxBodyBytes: z
    .int()
    .min(1024, 'must be at least 1024')
    .max(64 * 1024 * 1024, 'must be at most 67108864 (64 MiB)')
    .default(1024 * 1024)
    .describe('Largest accepted request body, in bytes.'),
  shutdownTimeoutMs: z
    .int()
    .min(0)
    .max(10 * 60 * 1000)
    .default(5000)
    .describe('Drain budget on stop and restart: how long in-flight requests and agent turns may take to finish.'),
})
export type GatewayConfig = z.infer<typeof GatewayConfig>

/** A model as "<provider>/<model id>". */
export const ModelName = z
  .string('must be a string "<provider>/<model id>", e.g. "openai/gpt-4o-mini"')
  .regex(/^[A-Za-z0-9_.-]+\/.+$/, 'must look like "<provider>/<model id>", e.g. "openai/gpt-4o-mini"')

/** A primary model and the models tried after it, in order, when it fails (see agent/models.ts). */
export const ModelChoice = z.strictObject({
  primary: ModelName.describe('The model asked first.'),
  fallbacks: z.array(ModelName).max(8, 'must list at most 8 models').default([]).describe('Models tried in order when the one before fails with 429, 5xx, a timeout, a network error or 401/403.'),
})

/** Either form of `agent.model`: an object is checked as `ModelChoice`, anything else as one model name. */
const AgentModel = z.union([ModelName, ModelChoice], {
  error: 'must be "<provider>/<model id>" or {"primary": "<provider>/<model id>", "fallbacks": ["<provider>/<model id>", …]}',
})

export const AgentConfig = z.strictObject({
  model: AgentModel.default('openai/gpt-4o-mini').describe('Model to talk to: "<provider>/<model id>", or {"primary": "<provider>/<model id>", "fallbacks": ["<provider>/<model id>", …]}.'),
  systemPrompt: z
    .string()
    .default('You are xopcbot, a helpful personal assistant. Answer concisely.')
    .describe('System prompt sent at the start of every turn.'),
  maxSteps: z.int().min(1).max(100).default(8).describe('Upper bound on model calls in one turn (the tool-call loop).'),
  timeoutMs: z.int().min(100).max(60 * 60 * 1000).default(120_000).describe('Time limit of one agent turn.'),
  maxRetries: z.int().min(0).max(10).default(2).describe('Retries of a model call that failed with a network error, 429 or 5xx (with backoff).'),
  historyLimit: z.int().min(0).max(10_000).default(50).describe('How many earlier messages of the session are sent to the model.'),
  concurrency: z.int().min(1).max(256).default(4).describe('How many sessions are processed at once (one turn at a time per session).'),
  callTimeoutMs: z
    .int()
    .min(100)
    .max(60 * 60 * 1000)
    .nullable()
    .default(null)
    .describe("Time limit of one model's attempt (its retries included) before the next model of agent.model's fallbacks is tried; default: timeoutMs shared evenly among the models."),
  budget: z
    .strictObject({
      dailyTokens: z.int().min(1, 'must be at least 1').nullable().default(null).describe('Input plus output tokens allowed per UTC day; once reached, turns are refused until the next UTC day. null: no limit.'),
    })
    .prefault({}),
  webFetch: z
    .strictObject({
      allowPrivate: z
        .boolean()
        .default(false)
        .describe('Let web_fetch reach loopback, private, link-local (cloud metadata) and other non-public addresses. Off: such addresses are refused after DNS resolution, on every redirect.'),
      maxBytes: z.int().min(1024).max(64 * 1024 * 1024).default(2 * 1024 * 1024).describe('Largest part of a response web_fetch reads, in bytes; the rest is cut off.'),
      maxChars: z.int().min(100).max(1_000_000).default(50_000).describe('Most characters of text web_fetch returns to the model; longer text is cut, with a note.'),
      timeoutMs: z.int().min(100).max(10 * 60 * 1000).default(15_000).describe('Time limit of one web_fetch call, redirects and reading the body included.'),
      maxRedirects: z.int().min(0).max(20).default(5).describe('Redirects web_fetch follows (each one checked like the first URL).'),
    })
    .prefault({}),
  tools: z
    .array(ToolEntry)
    .default([...TOOL_NAMES])
    .describe('Tools offered to the model: built-in names, and MCP tools as "<server>__<tool>" or "<server>__*". Built-in tools are offered only as listed; every MCP tool is offered until the list names one, then only those named.'),
})
export type AgentConfig = z.infer<typeof AgentConfig>

export const ProviderConfig = z.strictObject({
  type: z
    .enum(['openai', 'anthropic', 'openai-compatible'])
    .optional()
    .describe('Protocol of the provider. Presets know theirs; other names need "openai-compatible" (or another type) and a baseURL.'),
  apiKey: z.string().nullable().default(null).describe('API key. Presets also read their usual environment variable.'),
  baseURL: z.url().nullable().default(null).describe('Base URL of the API, e.g. "http://127.0.0.1:11434/v1".'),
  headers: z.record(z.string(), z.string()).default({}).describe('Extra HTTP headers sent with every request.'),
})
export type ProviderConfig = z.infer<typeof ProviderConfig>

const Providers = z
  .record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'provider names use letters, digits, "_" and "-"'), ProviderConfig)
  .default({})
  .superRefine((providers, ctx) => {
    for (const [name, provider] of Object.entries(providers)) {
      if ((PROVIDER_PRESETS as readonly string[]).includes(name)) continue
      if (!provider.type) {
        ctx.addIssue({ code: 'custom', path: [name, 'type'], message: `is required for a provider that is not a preset (${PROVIDER_PRESETS.join(', ')}); use "openai-compatible"` })
      }
      if (!provider.baseURL) {
        ctx.addIssue({ code: 'custom', path: [name, 'baseURL'], message: 'is required for a provider that is not a preset' })
      }
    }
  })

export const TelegramChannel = z
  .strictObject({
    type: z.literal('telegram'),
    enabled: z.boolean().default(false).describe('Start this channel with the gateway.'),
    token: z.string().min(1).nullable().default(null).describe('Bot token from @BotFather.'),
    mode: z.enum(['polling', 'webhook']).default('polling').describe('Receive updates by long polling or by a webhook.'),
    webhookSecret: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,256}$/, 'must be 1-256 characters of A-Z, a-z, 0-9, "_" and "-" (Telegram\'s rule)')
      .nullable()
      .default(null)
      .describe('Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (webhook mode).'),
    publicUrl: z.url().nullable().default(null).describe('Public base URL of this gateway (webhook mode).'),
    apiRoot: z.url().default('https://api.telegram.org').describe('Bot API server.'),
    allowFrom: z
      .array(z.union([z.string().min(1), z.int()]))
      .default([])
      .describe('User ids or usernames (with or without "@") always admitted in direct messages, whatever dmPolicy says. Empty admits no one by itself.'),
    dmPolicy: z
      .enum(['pairing', 'allowlist', 'open'])
      .default('pairing')
      .describe('Direct messages from senders not in allowFrom: "pairing" answers once with a code the owner approves (xopcbot pairing approve <code>); "allowlist" ignores them; "open" admits everyone.'),
    groupPolicy: z
      .enum(['disabled', 'allowlist', 'open'])
      .default('disabled')
      .describe('Group chats: "disabled" ignores them; "allowlist" answers only in the chats listed in groups; "open" in any group the bot is in.'),
    groups: z
      .array(z.union([z.string().regex(/^-?\d+$/, 'must be a chat id such as "-1001234567890"'), z.int()]))
      .default([])
      .describe('Chat ids of the groups the bot answers in when groupPolicy is "allowlist".'),
    requireMention: z
      .boolean()
      .default(true)
      .describe("In a group, answer only messages that mention the bot's @username or reply to one of its messages."),
    tools: z
      .array(ToolEntry)
      .optional()
      .describe("Narrows the tools of this channel's turns to those listed here and offered by agent.tools (same syntax). Default: agent.tools."),
  })
  .superRefine((channel, ctx) => {
    if (channel.enabled && !channel.token) ctx.addIssue({ code: 'custom', path: ['token'], message: 'is required when the channel is enabled' })
    if (channel.mode === 'webhook' && channel.enabled) {
      if (!channel.publicUrl) ctx.addIssue({ code: 'custom', path: ['publicUrl'], message: 'is required in webhook mode' })
      if (!channel.webhookSecret) ctx.addIssue({ code: 'custom', path: ['webhookSecret'], message: 'is required in webhook mode' })
    }
  })
export type TelegramChannel = z.infer<typeof TelegramChannel>

export const WebhookChannel = z.strictObject({
  type: z.literal('webhook'),
  enabled: z.boolean().default(true).describe('Accept and deliver events on this channel.'),
  url: z.url().describe('Where replies are POSTed (signed with the secret).'),
  secret: z.string().min(16, 'must be at least 16 characters').describe('HMAC-SHA256 key for X-Xopcbot-Signature, both ways.'),
  retry: z
    .strictObject({
      attempts: z.int().min(1).max(20).default(5).describe('Delivery attempts for a reply (5xx, 429 and network errors are retried).'),
      baseDelayMs: z.int().min(10).max(60_000).default(1000).describe('Delay before the second attempt; it doubles each time, up to 30 s.'),
    })
    .prefault({}),
  tools: z
    .array(ToolEntry)
    .optional()
    .describe("Narrows the tools of this channel's turns to those listed here and offered by agent.tools (same syntax). Default: agent.tools."),
})
export type WebhookChannel = z.infer<typeof WebhookChannel>

export const ChannelConfig = z.discriminatedUnion('type', [TelegramChannel, WebhookChannel], {
  // The valid types and the one given: `must be one of "telegram", "webhook" (got "slack")`.
  error: (issue) => {
    if (issue.code !== 'invalid_union') return undefined
    const types = ((issue as { options?: unknown[] }).options ?? []).map((t) => JSON.stringify(t)).join(', ')
    const given = issue.input && typeof issue.input === 'object' ? (issue.input as { type?: unknown }).type : undefined
    if (given === undefined) return `is required (one of ${types})`
    // Only a word that reads as a type is repeated: a token pasted into the wrong key must not reach an error
    // (the CLI's, the log's or POST /api/config/reload's answer); of anything else, only what kind it is.
    const shown = typeof given === 'string' ? (/^[A-Za-z][\w-]{0,15}$/.test(given) ? JSON.stringify(given) : given ? 'another text' : 'an empty text') : Array.isArray(given) ? 'a list' : given === null ? 'null' : typeof given === 'object' ? 'an object' : `a ${typeof given}`
    return `must be one of ${types} (got ${shown})`
  },
})
export type ChannelConfig = z.infer<typeof ChannelConfig>

/** A channel named "telegram" may leave out its type; every other channel states it. */
const Channels = z.preprocess(
  (value) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
    const out: Record<string, unknown> = {}
    for (const [name, channel] of Object.entries(value)) {
      const needsType = name === 'telegram' && channel && typeof channel === 'object' && !Array.isArray(channel) && !('type' in channel)
      out[name] = needsType ? { type: 'telegram', ...channel } : channel
    }
    return out
  },
  z.record(z.string().regex(/^[a-z0-9_-]{1,32}$/, 'channel names use a-z, 0-9, "_" and "-" (at most 32)'), ChannelConfig).default({}),
)

export const CronConfig = z.strictObject({
  timezone: z.string().refine(isTimeZone, 'must be an IANA time zone such as "UTC" or "Europe/Berlin"').default('UTC').describe('Default time zone of cron jobs.'),
})

export const LoggingConfig = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info').describe('Lowest level written to the console and the log file.'),
  file: z.string().min(1).nullable().default(null).describe('Log file; default <dataDir>/logs/gateway.log.'),
  maxFileBytes: z.int().min(64 * 1024).max(1024 * 1024 * 1024).default(10 * 1024 * 1024).describe('Size at which the log file is rotated.'),
  maxFiles: z.int().min(1).max(100).default(5).describe('How many rotated files are kept.'),
})
export type LoggingConfig = z.infer<typeof LoggingConfig>

const McpCommon = {
  enabled: z.boolean().default(true).describe('Connect to this server with the gateway.'),
  tools: z
    .array(z.string().min(1))
    .nullable()
    .default(null)
    .describe("The server's tools offered to the model (its own names, without the prefix). Default: all."),
  timeoutMs: z.int().min(100).max(10 * 60 * 1000).default(30_000).describe('Time limit of one tool call.'),
}

export const McpStdioServer = z.strictObject({
  transport: z.literal('stdio'),
  command: z.string().min(1).describe('Program to run (no shell); it speaks MCP on its stdin and stdout.'),
  args: z.array(z.string()).default([]).describe('Its arguments.'),
  env: z.record(z.string(), z.string()).default({}).describe('Its whole environment, besides PATH and HOME (the gateway\'s own is not passed on).'),
  cwd: z.string().min(1).nullable().default(null).describe('Its working directory.'),
  ...McpCommon,
})
export type McpStdioServer = z.infer<typeof McpStdioServer>

export const McpHttpServer = z.strictObject({
  transport: z.literal('http'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).describe('Streamable HTTP endpoint of the server.'),
  headers: z.record(z.string(), z.string()).default({}).describe('HTTP headers sent with every request (e.g. Authorization); treated as secrets.'),
  ...McpCommon,
})
export type McpHttpServer = z.infer<typeof McpHttpServer>

/** A server is stdio when it has a `command`, Streamable HTTP when it has a `url`; `transport` need not be written. */
export const McpServerConfig = z.preprocess(
  (value, ctx) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || 'transport' in value) return value
    const stdio = 'command' in value
    const http = 'url' in value
    if (stdio && http) ctx.addIssue({ code: 'custom', input: value, message: 'has both "command" (stdio) and "url" (Streamable HTTP); give one of them' })
    else if (!stdio && !http) ctx.addIssue({ code: 'custom', input: value, message: 'needs "command" (a stdio server) or "url" (a Streamable HTTP server)' })
    else return { transport: stdio ? 'stdio' : 'http', ...value }
    return value
  },
  z.discriminatedUnion('transport', [McpStdioServer, McpHttpServer]),
)
export type McpServerConfig = z.infer<typeof McpServerConfig>

export const McpConfig = z.strictObject({
  servers: z
    // No "__" and no "_" at either end: "<server>__<tool>" must name one server, and "<server>__*" no other.
    .record(z.string().regex(/^(?!_)(?!.*__)[A-Za-z0-9_-]{1,32}(?<!_)$/, 'MCP server names use A-Z, a-z, 0-9, "_" and "-" (at most 32), with no "__" and no "_" at either end'), McpServerConfig)
    .default({})
    .describe('MCP servers whose tools the model may call, as "<server>__<tool>".'),
})
export type McpConfig = z.infer<typeof McpConfig>

/** Why a repeating cron expression (5 or 6 fields, or a nickname such as @daily) cannot schedule backups, or null. */
function repeatingScheduleProblem(text: string): string | null {
  const fields = text.trim().split(/\s+/).length
  if (!text.trim().startsWith('@') && fields !== 5 && fields !== 6) return `must be a cron expression with 5 or 6 fields (seconds first) or a nickname such as "@daily"; got ${fields} field${fields === 1 ? '' : 's'}`
  try {
    // The parser that runs the schedule (the same as cron jobs'), so what passes here is what runs.
    const cron = new Cron(text.trim(), { paused: true })
    const next = cron.nextRun()
    cron.stop()
    return next ? null : 'never fires'
  } catch (error) {
    return (error as Error).message.replace(/^CronPattern: /, '')
  }
}

export const BackupConfig = z.strictObject({
  schedule: z
    .string()
    .superRefine((text, ctx) => {
      const problem = repeatingScheduleProblem(text)
      if (problem) ctx.addIssue({ code: 'custom', message: problem })
    })
    .optional()
    .describe('Cron expression (in cron.timezone) on which the running gateway writes a backup, e.g. "0 3 * * *"; none: no scheduled backups.'),
  keep: z.int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000').default(7).describe('How many scheduled backups are kept; older ones are deleted.'),
  dir: z.string().min(1).nullable().default(null).describe('Where backups are written (relative to the data directory); default <dataDir>/backups.'),
})
export type BackupConfig = z.infer<typeof BackupConfig>

/** Where `xopcbot update` finds releases (the layout `npm run release` writes); $XOPCBOT_UPDATE_URL overrides it. */
export const DEFAULT_UPDATE_URL = 'https://releases.xopcbot.example/xopcbot'
export const UpdateConfig = z.strictObject({
  baseUrl: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default(DEFAULT_UPDATE_URL)
    .describe('Release site of `xopcbot update`: <baseUrl>/index.json and <baseUrl>/v<version>/…'),
})

export const Config = z.strictObject({
  $schema: z.string().optional().describe('Editor hint; ignored.'),
  dataDir: z.string().min(1).nullable().default(null).describe('Where the database and logs live; default: the directory of the config file.'),
  gateway: GatewayConfig.prefault({}),
  agent: AgentConfig.prefault({}),
  providers: Providers,
  channels: Channels,
  cron: CronConfig.prefault({}),
  logging: LoggingConfig.prefault({}),
  pricing: z
    .record(
      ModelName,
      z.strictObject({
        input: z.number('must be a number (USD per million tokens)').min(0, 'must not be negative').describe('USD per million input tokens.'),
        output: z.number('must be a number (USD per million tokens)').min(0, 'must not be negative').describe('USD per million output tokens.'),
      }),
      { error: (issue) => (issue.code === 'invalid_key' ? 'must be a model as "<provider>/<model id>", e.g. "openai/gpt-4o-mini"' : undefined) },
    )
    .default({})
    .describe('Prices per model ("<provider>/<model id>"), for the cost estimates of /api/usage.'),
  mcp: McpConfig.prefault({}),
  backup: BackupConfig.prefault({}),
  update: UpdateConfig.prefault({}),
})
export type Config = z.infer<typeof Config>
