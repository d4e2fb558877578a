import { z } from 'zod'
import { DataError } from '../errors'
import { describeIssues } from '../validation'

/** How a message is stored; "delivering" (handed to the channel, outcome not yet written) shows as "processing". */
export const StoredState = z.enum(['queued', 'processing', 'delivering', 'delivered', 'failed'])
export type StoredState = z.infer<typeof StoredState>
export type MessageState = Exclude<StoredState, 'delivering'>

/** A row of inbound_messages, as the queue reads it back. */
export const MessageRow = z.object({
  id: z.string(),
  channel: z.string(),
  chat_id: z.string(),
  content: z.string(),
  state: StoredState,
  reply: z.string().nullable(),
  error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
})
export type MessageRow = z.infer<typeof MessageRow>
export const MESSAGE_COLUMNS = 'id, channel, chat_id, content, state, reply, error, created_at, updated_at'

/** A message still to be answered, in arrival order (recovery after a start). */
export const PendingRow = MessageRow.pick({ id: true, channel: true, chat_id: true })
export type PendingRow = z.infer<typeof PendingRow>

export const IdRow = z.object({ id: z.string() })
export const StateCount = z.object({ state: StoredState, n: z.int() })

/** A message as clients see it (GET /api/message/:id). */
export interface InboundMessage {
  id: string
  channel: string
  chat_id: string
  state: MessageState
  reply?: string
  error?: string
  created_at: string
  updated_at: string
}

export const FINAL: ReadonlySet<StoredState> = new Set<StoredState>(['delivered', 'failed'])

export const shownState = (state: StoredState): MessageState => (state === 'delivering' ? 'processing' : state)

export function view(row: MessageRow): InboundMessage {
  return {
    id: row.id,
    channel: row.channel,
    chat_id: row.chat_id,
    state: shownState(row.state),
    ...(row.reply !== null ? { reply: row.reply } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    created_at: row.created_at,
    updated_at: row.updated_at,
  }
}

/**
 * What comes back from inbound_messages is parsed, not cast: a row that does not fit (edited by hand, written
 * by a newer version, damaged) is a DataError naming the row and the field — here, not a crash somewhere later.
 */
export function parseRow<S extends z.ZodType>(schema: S, row: unknown): z.output<S> {
  const parsed = schema.safeParse(row)
  if (parsed.success) return parsed.data
  const id = row !== null && typeof row === 'object' && 'id' in row ? ` ${JSON.stringify((row as { id: unknown }).id)}` : ''
  const problems = parsed.error.issues.flatMap((issue) => describeIssues([issue], issue.path.length ? [] : ['row'], { input: row })).join('; ')
  throw new DataError(`the database holds a damaged inbound_messages row${id} (${problems})`)
}
