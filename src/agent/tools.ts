import type { ToolSet } from 'ai'
import { AsyncLocalStorage } from 'node:async_hooks'
import { LogLevels } from 'consola/core'
import { z } from 'zod'
import type { Config } from '../config/schema'
import type { Logger } from '../logging/logger'
import { describeIssues } from '../validation'

/** A tool the model may call: a zod input schema and what it does. */
export interface AgentTool<Input = any> {
  name: string
  description: string
  input: z.ZodType<Input>
  /** `signal`: aborted when the turn ends (timeout, client gone) */
  run: (input: Input, signal?: AbortSignal) => Promise<unknown> | unknown
}

export function timeTool(defaultTimeZone: string, now: () => Date = () => new Date()): AgentTool<{ timezone?: string | undefined }> {
  return {
    name: 'time',
    description: 'The current date and time. Optionally in a given IANA time zone (default: the configured one).',
    input: z.object({ timezone: z.string().optional().describe('IANA time zone such as "Europe/Berlin"') }),
    run: ({ timezone }) => {
      const zone = timezone ?? defaultTimeZone
      const date = now()
      try {
        const local = new Intl.DateTimeFormat('en-GB', { timeZone: zone, dateStyle: 'full', timeStyle: 'long' }).format(date)
        return { iso: date.toISOString(), timezone: zone, local }
      } catch {
        return { error: `unknown time zone ${JSON.stringify(zone)}` }
      }
    },
  }
}

/** Where the `send_message` tool finds a channel's outbound half (src/channels/senders.ts). */
export interface SenderDirectory {
  find(channel: string): { send(chatId: string, text: string): Promise<string> } | undefined
  /** why there is no sender by this name, as a sentence */
  whyMissing(channel: string): string
}

/** Lets the model send a message to a chat of a configured channel. */
export function sendMessageTool(senders: SenderDirectory): AgentTool<{ channel: string; chat_id: string; content: string }> {
  return {
    name: 'send_message',
    description: 'Send a text message to a chat of a configured channel (for example channel "telegram" and a chat id).',
    input: z.object({
      channel: z.string().describe('channel name, e.g. "telegram"'),
      chat_id: z.string().describe('chat id within the channel'),
      content: z.string().min(1).describe('the text to send'),
    }),
    run: async ({ channel, chat_id, content }) => {
      const sender = senders.find(channel)
      if (!sender) return { sent: false, error: senders.whyMissing(channel) }
      try {
        return { sent: true, message_id: await sender.send(chat_id, content) }
      } catch (error) {
        return { sent: false, error: (error as Error).message }
      }
    },
  }
}

/**
 * Where the `cron` tool finds the jobs (CronJobs, src/cron/jobs.ts, built before the agent): listing, creating
 * and deleting them — never running them.
 */
export interface JobDirectory {
  list(): unknown[]
  create(input: any): unknown
  delete(id: string): void
}

/** Lets the model list, create and delete scheduled jobs ("remind me every Monday at 9"). */
/**
 * The turn a tool call belongs to (set around each model call by the agent): its session, its channel, and
 * what to tell it. Module-level, so that tools built before the agent can ask where they are called from.
 */
export const turnScope = new AsyncLocalStorage<ToolCallScope>()

/**
 * @param restricted whether a channel has a tool list of its own (`channels.<name>.tools`): a scheduled agent
 *   job runs later with all of `agent.tools`, so from such a channel only direct reminders may be created.
 */
export function cronTool(jobs: JobDirectory, restricted: (channel: string) => boolean = () => false): AgentTool {
  const input = z.discriminatedUnion('action', [
    z.object({ action: z.literal('list') }),
    z.object({
      action: z.literal('create'),
      schedule: z.string().describe('cron expression (5 or 6 fields), a nickname like @daily, or an ISO-8601 date-time for a one-shot'),
      message: z.string().describe('what the assistant is asked at that time (mode agent) or the text sent (mode direct)'),
      name: z.string().optional(),
      timezone: z.string().optional().describe('IANA time zone, default the configured one'),
      mode: z.enum(['agent', 'direct']).optional(),
      channel: z.string().optional().describe('where the result is delivered, e.g. "telegram"'),
      chat_id: z.string().optional(),
    }),
    z.object({ action: z.literal('delete'), job_id: z.string() }),
  ])
  return {
    name: 'cron',
    description: 'Manage scheduled jobs and reminders: list them, create one (recurring or one-shot), or delete one.',
    input,
    run: (request: z.infer<typeof input>) => {
      try {
        if (request.action === 'list') return { jobs: jobs.list() }
        if (request.action === 'delete') {
          jobs.delete(request.job_id)
          return { deleted: request.job_id }
        }
        const { action: _action, ...fields } = request
        const channel = turnScope.getStore()?.channel
        if (channel && restricted(channel) && fields.mode !== 'direct') {
          return { error: `this conversation's channel "${channel}" has a tool list of its own (channels.${channel}.tools), and a scheduled agent job would run with all the assistant's tools: only direct reminders (mode "direct") can be created from here` }
        }
        return { created: jobs.create(fields) }
      } catch (error) {
        return { error: (error as Error).message }
      }
    },
  }
}

/**
 * The tools offered to the model: those listed in `agent.tools` that this gateway provides. Built once: each
 * input schema is converted to JSON Schema here, not on every model call (the AI SDK converts a bare zod
 * schema anew each time it prepares a call, which cost more than the rest of a turn).
 */
export function toolSet(config: Pick<Config, 'agent' | 'cron'>, available: AgentTool[], ai: Pick<typeof import('ai'), 'tool' | 'zodSchema'>): ToolSet {
  const set: ToolSet = {}
  for (const t of available) {
    if (!config.agent.tools.includes(t.name as never)) continue
    const converted = ai.zodSchema(t.input)
    void converted.jsonSchema
    // The input is checked when the tool runs, not by the AI SDK: input the model got wrong is then described (to
    // the model, and in the history a user reads) in our words, not as the SDK's wrapping of zod's issue list.
    const inputSchema: typeof converted = { ...converted, validate: (value) => ({ success: true, value: value as never }) }
    set[t.name] = ai.tool({ description: t.description, inputSchema, execute: async (input, { abortSignal }) => t.run(toolInput(t.input, input), abortSignal) })
  }
  return set
}

/** A tool's input the model got wrong; the history shows it as "Invalid input: timezone: must be a string". */
class ToolInputError extends Error {
  override readonly name = 'Invalid input'
}

function toolInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new ToolInputError(describeIssues(parsed.error.issues, [], { input: value, noun: 'field' }).join('; '))
  return parsed.data
}

/** Where the agent finds the MCP servers' tools (src/mcp/manager.ts); `version` changes when the list does. */
export interface McpTools {
  readonly version: number
  tools(): readonly { name: string; description: string; inputSchema: Record<string, unknown>; run(input: unknown, signal?: AbortSignal): Promise<unknown> }[]
}

/** The MCP tools as AI SDK tools; their schemas are JSON Schema already, so nothing is converted per call. */
export function mcpToolSet(mcp: McpTools, ai: Pick<typeof import('ai'), 'tool' | 'jsonSchema'>): ToolSet {
  const set: ToolSet = {}
  for (const t of mcp.tools()) {
    set[t.name] = ai.tool({ description: t.description, inputSchema: ai.jsonSchema(t.inputSchema as never), execute: (input, { abortSignal }) => t.run(input, abortSignal) })
  }
  return set
}

/** MCP tools are offered as "<server>__<tool>"; built-in names never contain "__". */
export const isMcpToolName = (name: string) => name.includes('__')

/**
 * Whether a tool name is in a list of `agent.tools` / `channels.<name>.tools` entries: a built-in name or
 * "<server>__<tool>" exactly, or "<server>__*" for all of a server's tools.
 */
export function toolMatcher(entries: readonly string[]): (name: string) => boolean {
  const exact = new Set(entries.filter((entry) => !entry.endsWith('__*')))
  const prefixes = entries.filter((entry) => entry.endsWith('__*')).map((entry) => entry.slice(0, -1))
  return (name) => exact.has(name) || prefixes.some((prefix) => name.startsWith(prefix))
}

/**
 * `agent.tools`: built-in tools as listed; MCP tools all of them (each server's own `tools` narrows them) until
 * the list names one, then only those named — so adding an MCP server needs no edit of agent.tools.
 */
export function agentToolFilter(entries: readonly string[]): (name: string) => boolean {
  const listed = toolMatcher(entries)
  const restrictsMcp = entries.some(isMcpToolName)
  return (name) => (isMcpToolName(name) && !restrictsMcp) || listed(name)
}

/** The tools of `set` that `keep` admits, the same tool objects (nothing rebuilt). */
export function filterToolSet(set: ToolSet, keep: (name: string) => boolean): ToolSet {
  const out: ToolSet = {}
  for (const [name, tool] of Object.entries(set)) if (keep(name)) out[name] = tool
  return out
}

/** What a tool call log line says about the session it belongs to. */
export interface ToolCallScope {
  session: string
  /** the channel of the turn's conversation, when it comes from one */
  channel?: string | null
  /** told before a tool runs: a turn whose tools ran must not start over on another model (they would run twice) */
  toolStarted?: () => void
}

/**
 * Each tool's execute wrapped once, when the set is built: one info line per call with the tool, its duration
 * and outcome (never the arguments or the result, which may hold secrets); the arguments only at debug, redacted.
 * A result that reports an error (`{error}`, MCP `isError`) counts as an error as a thrown one does.
 */
export function loggedToolSet(set: ToolSet, log: Logger, scope: () => ToolCallScope | undefined, redact: (text: string) => string = (text) => text): ToolSet {
  const out: ToolSet = {}
  for (const [name, t] of Object.entries(set)) {
    const execute = t.execute
    if (!execute) {
      out[name] = t
      continue
    }
    out[name] = {
      ...t,
      execute: async (input: unknown, options: any) => {
        const started = performance.now()
        const current = scope()
        current?.toolStarted?.()
        const session = current?.session
        if (log.level >= LogLevels.debug) log.debug('tool call arguments', { tool: name, session, toolCallId: options?.toolCallId, input: redact(JSON.stringify(input) ?? 'null') })
        try {
          // The turn's time limit holds for its tools too: one that ignores the abort signal is not waited for.
          const result = await untilAborted((execute as (input: unknown, options: unknown) => unknown)(input, options), options?.abortSignal)
          const failed = !!result && typeof result === 'object' && ((result as { isError?: unknown }).isError === true || typeof (result as { error?: unknown }).error === 'string')
          log.info('tool call', { tool: name, session, ms: Math.round(performance.now() - started), outcome: failed ? 'error' : 'ok' })
          return result
        } catch (error) {
          log.info('tool call', { tool: name, session, ms: Math.round(performance.now() - started), outcome: 'error' })
          throw error
        }
      },
    } as typeof t
  }
  return out
}

/** `work`, or a rejection as soon as `signal` aborts (the work itself may go on; its result is dropped). */
function untilAborted<T>(work: T | Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return Promise.resolve(work)
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error('the turn was aborted'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('the turn was aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    Promise.resolve(work).then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (error) => (signal.removeEventListener('abort', onAbort), reject(error)),
    )
  })
}
