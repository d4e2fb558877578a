import type { Database } from 'bun:sqlite'
import type { ModelMessage } from 'ai'
import { z } from 'zod'
import { groupCommitOf } from '../storage/group-commit'
import { UsageLedger, type UsageEntry } from './usage'

/**
 * A session key a client names (SPEC §6): the `session` of /api/agent, X-Xopcbot-Session, a cron job's
 * `session`. `[A-Za-z0-9_.:@-]{1,128}`, except "." and "..": a URL path cannot carry those as a segment
 * (clients resolve them, `%2E` included), so such a session could never be read or deleted.
 */
export const SessionKey = z
  .string()
  .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'must be 1-128 characters of A-Z, a-z, 0-9 and _ . : @ -')
  .refine((key) => key !== '.' && key !== '..', 'must not be "." or ".." (no URL path can name them)')

/** Channel names (config) and chat ids (webhook events, /api/message) are at most this long. */
const MAX_CHANNEL_NAME_LENGTH = 32
const MAX_CHAT_ID_LENGTH = 256
/** The longest key a session can have: `<channel>:<chat_id>` (lengths as JavaScript counts, in UTF-16 units). */
export const MAX_SESSION_KEY_LENGTH = MAX_CHANNEL_NAME_LENGTH + 1 + MAX_CHAT_ID_LENGTH

/**
 * Any key a stored session can have, as it arrives in a URL path, already decoded once by the router: a
 * client's name (SessionKey), or a channel conversation's `<channel>:<chat_id>` with the chat id exactly as the
 * channel gave it — any Unicode, spaces, `/`, `%`, `?`, `#` included. The router gives no string when the
 * percent-encoding is broken (`%ZZ`, an encoded lone surrogate).
 */
export const StoredSessionKey = z
  .string('must be a session key encoded with encodeURIComponent (the path is not valid percent-encoding)')
  .min(1, 'must be a non-empty session key')
  .max(MAX_SESSION_KEY_LENGTH, `must be at most ${MAX_SESSION_KEY_LENGTH} characters (a channel name of up to ${MAX_CHANNEL_NAME_LENGTH}, ":", a chat id of up to ${MAX_CHAT_ID_LENGTH})`)

export interface SessionSummary {
  key: string
  channel: string | null
  chat_id: string | null
  message_count: number
  created_at: string
  updated_at: string
}

export interface StoredMessage {
  role: 'user' | 'assistant' | 'tool'
  content: string
  created_at: string
  input_tokens?: number
  output_tokens?: number
  /** the model that wrote an assistant message ("<provider>/<model id>") */
  model?: string
  /** an assistant message's tool calls, as the model made them */
  tool_calls?: { id: string; name: string; input: unknown }[]
  /** a tool message's results; `error` when the tool failed */
  tool_results?: { id: string; name: string; output: unknown; error?: true }[]
}

/** The tool calls or results of a stored model message (its JSON), for the sessions API. */
function toolParts(role: string, json: string): Pick<StoredMessage, 'tool_calls' | 'tool_results'> {
  if (role !== 'assistant' && role !== 'tool') return {}
  let message: ModelMessage
  try {
    message = JSON.parse(json)
  } catch {
    return {}
  }
  if (!Array.isArray(message.content)) return {}
  const parts = message.content as Array<Record<string, any>>
  if (role === 'assistant') {
    const calls = parts.filter((part) => part.type === 'tool-call').map((part) => ({ id: String(part.toolCallId), name: String(part.toolName), input: part.input ?? null }))
    return calls.length ? { tool_calls: calls } : {}
  }
  const results = parts
    .filter((part) => part.type === 'tool-result')
    .map((part) => {
      const output = part.output
      const failed = typeof output?.type === 'string' && output.type.startsWith('error')
      return { id: String(part.toolCallId), name: String(part.toolName), output: output && typeof output === 'object' && 'value' in output ? output.value : (output ?? null), ...(failed ? { error: true as const } : {}) }
    })
  return results.length ? { tool_results: results } : {}
}

export interface TurnRecord {
  channel?: string | null
  chatId?: string | null
  /** the user's message, then what the model produced (assistant and tool messages), in order */
  messages: ModelMessage[]
  usage?: { inputTokens?: number | undefined; outputTokens?: number | undefined }
  /** the model that answered ("<provider>/<model id>"): stored with the assistant messages, and the turn's usage counted */
  model?: string | null
  at: string
}

/** The text of a model message as people read it: text parts joined; tool calls and results summarised. */
export function displayText(message: ModelMessage): string {
  if (typeof message.content === 'string') return message.content
  const parts: string[] = []
  for (const part of message.content as Array<Record<string, any>>) {
    if (part.type === 'text') parts.push(part.text)
    else if (part.type === 'tool-call') parts.push(`[tool call ${part.toolName} ${JSON.stringify(part.input ?? {})}]`)
    else if (part.type === 'tool-result') parts.push(`[tool result ${part.toolName} ${JSON.stringify(part.output?.value ?? part.output ?? null)}]`)
  }
  return parts.join('\n')
}

/** A session's newest messages as the model is sent them, kept after they were read or written. */
interface CachedHistory {
  /** the newest rows, oldest first, at most `window` */
  rows: { role: string; message: ModelMessage; size: number }[]
  /** how many rows the history was read with (the cache can answer any limit up to this) */
  window: number
  /** the stored text's length of the rows, summed: what the copy costs, roughly */
  size: number
}

/**
 * How many sessions keep their history in memory, and how much text all of them may hold: the least recently
 * used leave first. A session whose window alone is larger than an eighth of that is read from SQLite each time.
 */
const CACHED_SESSIONS = 512
const CACHED_TEXT = 32 * 1024 * 1024

/**
 * Conversation history in SQLite: one row per session, one per message. SQLite is the record; the newest
 * messages of recently used sessions are also kept in memory, already parsed, so that a turn does not read
 * and parse its whole history window again (this store is the only writer of the history tables, and it
 * changes the copy only after its transaction committed).
 */
export class SessionStore {
  /** tokens per turn, written with the turns */
  readonly usage: UsageLedger
  private readonly cache = new Map<string, CachedHistory>()
  private cachedText = 0
  /** a turn's rows, written in the caller's transaction */
  private readonly append: (key: string, turn: TurnRecord, rows: AppendRow[], usage: UsageEntry | null, alongside?: () => void) => void

  constructor(private readonly db: Database) {
    const ledger = (this.usage = new UsageLedger(db))
    const upsertSession = db.query(
      `INSERT INTO sessions (key, channel, chat_id, created_at, updated_at) VALUES ($key, $channel, $chat_id, $at, $at)
       ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at`,
    )
    const insertMessage = db.query(
      `INSERT INTO session_messages (session_key, role, content, message, input_tokens, output_tokens, model, created_at)
       VALUES ($key, $role, $content, $message, $input, $output, $model, $at)`,
    )
    this.append = (key, turn, rows, usage, alongside) => {
      upsertSession.run({ key, channel: turn.channel ?? null, chat_id: turn.chatId ?? null, at: turn.at })
      for (const row of rows) insertMessage.run({ key, ...row, at: turn.at })
      if (usage) ledger.record(usage)
      alongside?.()
    }
  }

  list({ limit, offset, channel }: { limit: number; offset: number; channel?: string | undefined }): { sessions: SessionSummary[]; total: number } {
    const where = channel ? 'WHERE s.channel = $channel' : ''
    const params: Record<string, string> = channel ? { channel } : {}
    const total = (this.db.query(`SELECT COUNT(*) AS n FROM sessions s ${where}`).get(params) as { n: number }).n
    const sessions = this.db
      .query(
        `SELECT s.key, s.channel, s.chat_id, s.created_at, s.updated_at,
                (SELECT COUNT(*) FROM session_messages m WHERE m.session_key = s.key) AS message_count
         FROM sessions s ${where} ORDER BY s.updated_at DESC, s.key LIMIT $limit OFFSET $offset`,
      )
      .all({ ...params, limit, offset }) as SessionSummary[]
    return { sessions, total }
  }

  get(key: string): (SessionSummary & { messages: StoredMessage[] }) | null {
    const session = this.db
      .query(
        `SELECT s.key, s.channel, s.chat_id, s.created_at, s.updated_at,
                (SELECT COUNT(*) FROM session_messages m WHERE m.session_key = s.key) AS message_count
         FROM sessions s WHERE s.key = $key`,
      )
      .get({ key }) as SessionSummary | null
    if (!session) return null
    const rows = this.db
      .query('SELECT role, content, message, created_at, input_tokens, output_tokens, model FROM session_messages WHERE session_key = $key ORDER BY id')
      .all({ key }) as Array<StoredMessage & { message: string; input_tokens: number | null; output_tokens: number | null; model: string | null }>
    const messages = rows.map(({ message, input_tokens, output_tokens, model, ...rest }) => ({
      ...rest,
      ...(input_tokens !== null ? { input_tokens } : {}),
      ...(output_tokens !== null ? { output_tokens } : {}),
      ...(model !== null ? { model } : {}),
      ...toolParts(rest.role, message),
    }))
    return { ...session, messages }
  }

  delete(key: string): boolean {
    this.forget(key)
    return this.db.query('DELETE FROM sessions WHERE key = $key').run({ key }).changes > 0
  }

  /**
   * The last `limit` messages to send to the model. The window never starts inside a turn (with a tool
   * result whose call was cut off): it starts at a user message.
   */
  history(key: string, limit: number): ModelMessage[] {
    if (limit <= 0) return []
    let cached = this.cache.get(key)
    if (cached && cached.window >= limit) {
      // Most recently used last: a Map keeps insertion order.
      this.cache.delete(key)
      this.cache.set(key, cached)
    } else {
      const rows = this.db
        .query('SELECT role, message FROM (SELECT id, role, message FROM session_messages WHERE session_key = $key ORDER BY id DESC LIMIT $limit) ORDER BY id')
        .all({ key, limit }) as { role: string; message: string }[]
      const parsed = rows.map((row) => ({ role: row.role, message: frozen(JSON.parse(row.message)) as ModelMessage, size: row.message.length }))
      cached = { rows: parsed, window: limit, size: parsed.reduce((sum, row) => sum + row.size, 0) }
      this.remember(key, cached)
    }
    const rows = cached.rows.length > limit ? cached.rows.slice(-limit) : cached.rows
    const start = rows.findIndex((row) => row.role === 'user')
    return start < 0 ? [] : rows.slice(start).map((row) => row.message)
  }

  /**
   * Writes a whole turn in one transaction — either all of its messages are stored, or none — and resolves once
   * it is committed. Turns that end while the event loop turns share that transaction (storage/group-commit.ts),
   * each in a savepoint of its own. `alongside` runs inside it (the inbound queue stores the reply with the
   * history it belongs to).
   */
  async appendTurn(key: string, turn: TurnRecord, alongside?: () => void): Promise<void> {
    const last = turn.messages.length - 1
    const rows = turn.messages.map((message, index): AppendRow => {
      const withUsage = index === last && message.role === 'assistant'
      return {
        role: message.role,
        content: displayText(message),
        message: JSON.stringify(message),
        input: withUsage ? (turn.usage?.inputTokens ?? null) : null,
        output: withUsage ? (turn.usage?.outputTokens ?? null) : null,
        model: message.role === 'assistant' ? (turn.model ?? null) : null,
      }
    })
    const usage: UsageEntry | null = turn.model
      ? { at: turn.at, session: key, channel: turn.channel ?? null, model: turn.model, inputTokens: turn.usage?.inputTokens ?? 0, outputTokens: turn.usage?.outputTokens ?? 0 }
      : null
    // The in-memory copies (today's totals, the cached history) change right after the COMMIT, before any other
    // code runs: nothing can read the database's new state next to an old copy.
    await groupCommitOf(this.db).run(
      () => this.append(key, turn, rows, usage, alongside),
      () => {
        if (usage) this.usage.count(usage, 1)
        this.extendCached(key, rows)
      },
    )
  }

  private extendCached(key: string, rows: AppendRow[]) {
    const cached = this.cache.get(key)
    if (!cached) return
    // As SQLite will give them back: parsed from the stored text.
    for (const row of rows) cached.rows.push({ role: row.role, message: frozen(JSON.parse(row.message)), size: row.message.length })
    const gone = cached.rows.length > cached.window ? cached.rows.splice(0, cached.rows.length - cached.window) : []
    const change = rows.reduce((sum, row) => sum + row.message.length, 0) - gone.reduce((sum, row) => sum + row.size, 0)
    cached.size += change
    this.cachedText += change
    this.trim()
  }

  private remember(key: string, history: CachedHistory) {
    this.forget(key)
    if (history.size > CACHED_TEXT / 8) return
    this.cache.set(key, history)
    this.cachedText += history.size
    this.trim()
  }

  private forget(key: string) {
    const cached = this.cache.get(key)
    if (!cached) return
    this.cache.delete(key)
    this.cachedText -= cached.size
  }

  /** The least recently used sessions leave until the copy is within both bounds. */
  private trim() {
    while (this.cache.size > 0 && (this.cache.size > CACHED_SESSIONS || this.cachedText > CACHED_TEXT)) this.forget(this.cache.keys().next().value!)
  }
}

interface AppendRow {
  role: string
  content: string
  message: string
  input: number | null
  output: number | null
  model: string | null
}

/** Messages handed to the model code are shared between turns: none of them may be changed. */
function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) frozen(item)
    Object.freeze(value)
  }
  return value
}
