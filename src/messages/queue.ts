import type { Database } from 'bun:sqlite'
import { randomBytes } from 'node:crypto'
import type { Incoming, Intake } from '../channels/channel'
import type { QueueObserver } from '../metrics/recorder'
import { groupCommitOf } from '../storage/group-commit'
import { FINAL, IdRow, MESSAGE_COLUMNS, MessageRow, parseRow, PendingRow, shownState, StateCount, view, type InboundMessage, type MessageState, type StoredState } from './records'

/**
 * `msg_` + 24 hex digits: the time in ms, then 48 random bits. Ids that grow with time are inserted at the
 * end of the id index; random ones landed on a random page each, so a group of 64 accepts dirtied some 64
 * index pages and wrote all of them to the WAL (and the checkpoints after it).
 */
export function messageId(now = Date.now()): string {
  return `msg_${now.toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`
}

/** A freshly stored message, for the worker to schedule: its id and its chat (`<channel>:<chat id>`). */
export interface Accepted {
  id: string
  chat: string
}

/**
 * The durable inbound queue (SPEC §6, §8): every message from /api/message, Telegram or a webhook is stored
 * here before it is acknowledged, and read back as it moves queued → processing → delivered | failed. What
 * moves it is the worker (./worker.ts), which listens for what is accepted; clients wait here for the outcome.
 */
type StateFields = { reply?: string; error?: string; delivered_id?: string }

export class InboundQueue implements Intake {
  private readonly waiters = new Map<string, Set<(message: InboundMessage) => void>>()
  private readonly listeners: ((accepted: Accepted[]) => void)[] = []

  constructor(
    private readonly deps: {
      db: Database
      /** strips configured secrets from error texts before they are stored */
      redact?: (text: string) => string
      /** counts the messages entering each state */
      metrics?: QueueObserver
    },
  ) {}

  /** Calls `listener` with the messages each accept stored for the first time, after their transaction. */
  onAccepted(listener: (accepted: Accepted[]) => void) {
    this.listeners.push(listener)
  }

  /**
   * Stores one message and resolves to its id once it is committed. The messages accepted while the event loop
   * turns are stored in one transaction (storage/group-commit.ts): a burst of clients pays one commit, and each
   * is still answered only after its message is stored.
   */
  async accept(message: Incoming, source: string): Promise<string> {
    const { ids, fresh } = await groupCommitOf(this.deps.db).run(() => this.insert([{ message, source }]))
    this.announce(fresh)
    return ids[0]!
  }

  /** Stores several messages (and runs `alongside`, e.g. a Telegram offset) in one transaction. */
  acceptAll(messages: Incoming[], source: string, alongside?: () => void): string[] {
    const { ids, fresh } = this.deps.db
      .transaction(() => {
        const stored = this.insert(messages.map((message) => ({ message, source })))
        alongside?.()
        return stored
      })
      .immediate()
    this.announce(fresh)
    return ids
  }

  /** Tells the listeners (the worker) what was stored for the first time, once it is committed. */
  private announce(fresh: Accepted[]) {
    this.deps.metrics?.transition('queued', fresh.length)
    if (fresh.length) for (const listener of this.listeners) listener(fresh)
  }

  /** Inserts messages (in the caller's transaction); an external id seen before gives the stored message's id. */
  private insert(entries: { message: Incoming; source: string }[]): { ids: string[]; fresh: Accepted[] } {
    const db = this.deps.db
    const now = new Date().toISOString()
    const ids: string[] = []
    const fresh: Accepted[] = []
    const insert = db.query(
      `INSERT INTO inbound_messages (id, channel, chat_id, content, sender, source, external_id, state, created_at, updated_at)
       VALUES ($id, $channel, $chat_id, $content, $sender, $source, $external_id, 'queued', $now, $now)
       ON CONFLICT (channel, external_id) DO NOTHING`,
    )
    for (const { message, source } of entries) {
      const id = messageId()
      const result = insert.run({ id, channel: message.channel, chat_id: message.chatId, content: message.content, sender: message.sender ?? null, source, external_id: message.externalId ?? null, now })
      if (result.changes > 0) {
        ids.push(id)
        fresh.push({ id, chat: `${message.channel}:${message.chatId}` })
      } else {
        const existing = db.query('SELECT id FROM inbound_messages WHERE channel = $channel AND external_id = $external_id').get({ channel: message.channel, external_id: message.externalId ?? null })
        ids.push(parseRow(IdRow, existing).id)
      }
    }
    return { ids, fresh }
  }

  get(id: string): InboundMessage | null {
    const row = this.row(id)
    return row ? view(row) : null
  }

  /** Resolves with the message once it is delivered or failed, or with its current state after `timeoutMs`. */
  waitFor(id: string, timeoutMs: number): Promise<InboundMessage> {
    const current = this.row(id)
    if (!current || FINAL.has(current.state)) return Promise.resolve(view(current!))
    return new Promise((resolve) => {
      const done = (message: InboundMessage) => {
        clearTimeout(timer)
        this.waiters.get(id)?.delete(done)
        resolve(message)
      }
      // A timer callback must not throw: when the row cannot be read right now, answer with what was known.
      const timer = setTimeout(() => {
        let latest: InboundMessage
        try {
          latest = this.get(id) ?? view(current)
        } catch {
          latest = view(current)
        }
        done(latest)
      }, timeoutMs)
      if (!this.waiters.has(id)) this.waiters.set(id, new Set())
      this.waiters.get(id)!.add(done)
    })
  }

  /** The most recent messages, newest first, with their content (GET /api/messages, the Control UI). */
  recent(options: { limit: number; offset: number; state?: MessageState; channel?: string }): (InboundMessage & { content: string })[] {
    // "processing" as clients see it includes the stored "delivering".
    const states = options.state === undefined ? null : options.state === 'processing' ? ['processing', 'delivering'] : [options.state]
    const rows = this.deps.db
      .query(
        `SELECT ${MESSAGE_COLUMNS} FROM inbound_messages
         WHERE ($any_state OR state IN ($s1, $s2)) AND ($channel IS NULL OR channel = $channel)
         ORDER BY seq DESC LIMIT $limit OFFSET $offset`,
      )
      .all({ any_state: states === null ? 1 : 0, s1: states?.[0] ?? null, s2: states?.[1] ?? states?.[0] ?? null, channel: options.channel ?? null, limit: options.limit, offset: options.offset })
    return rows.map((row) => {
      const parsed = parseRow(MessageRow, row)
      return { ...view(parsed), content: parsed.content }
    })
  }

  /** Counts by state, as clients see them. */
  depth(): Record<MessageState, number> {
    const counts: Record<MessageState, number> = { queued: 0, processing: 0, delivered: 0, failed: 0 }
    for (const row of this.deps.db.query('SELECT state, COUNT(*) AS n FROM inbound_messages GROUP BY state').all()) {
      const { state, n } = parseRow(StateCount, row)
      counts[shownState(state)] += n
    }
    return counts
  }

  // What the worker reads and writes.

  row(id: string): MessageRow | null {
    const row = this.deps.db.query(`SELECT ${MESSAGE_COLUMNS} FROM inbound_messages WHERE id = $id`).get({ id })
    return row === null ? null : parseRow(MessageRow, row)
  }

  /**
   * Moves a message on, in the next group commit (storage/group-commit.ts); resolves once it is stored. One that
   * reaches delivered or failed answers those waiting for it.
   */
  async setState(id: string, state: StoredState, fields: StateFields = {}): Promise<void> {
    await groupCommitOf(this.deps.db).run(() => this.updateState(id, state, fields))
    this.deps.metrics?.transition(state)
    this.answerWaiters(id, state)
  }

  private updateState(id: string, state: StoredState, fields: StateFields) {
    this.deps.db
      .query('UPDATE inbound_messages SET state = $state, reply = COALESCE($reply, reply), error = $error, delivered_id = COALESCE($delivered_id, delivered_id), updated_at = $now WHERE id = $id')
      .run({ id, state, reply: fields.reply ?? null, error: fields.error === undefined ? null : (this.deps.redact?.(fields.error) ?? fields.error), delivered_id: fields.delivered_id ?? null, now: new Date().toISOString() })
  }

  private answerWaiters(id: string, state: StoredState) {
    const waiting = FINAL.has(state) ? this.waiters.get(id) : undefined
    if (waiting) {
      const message = this.get(id)!
      for (const waiter of [...waiting]) waiter(message)
      this.waiters.delete(id)
    }
  }

  /** Stores the reply of a turn (called in the transaction that stores the turn's history). */
  storeReply(id: string, reply: string) {
    this.deps.db.query('UPDATE inbound_messages SET reply = $reply, updated_at = $now WHERE id = $id').run({ id, reply, now: new Date().toISOString() })
  }

  /** Marks failed the messages a stop caught while being delivered (never sent again); returns how many. */
  failInterruptedDeliveries(): number {
    const failed = this.deps.db
      .query(`UPDATE inbound_messages SET state = 'failed', error = 'the gateway stopped while this reply was being delivered; it was not sent again, so it may not have arrived', updated_at = $now WHERE state = 'delivering'`)
      .run({ now: new Date().toISOString() }).changes
    this.deps.metrics?.transition('failed', failed)
    return failed
  }

  /** Messages still to be answered, in the order they were stored. */
  pending(): PendingRow[] {
    return this.deps.db
      .query(`SELECT id, channel, chat_id FROM inbound_messages WHERE state IN ('queued', 'processing') ORDER BY seq`)
      .all()
      .map((row) => parseRow(PendingRow, row))
  }
}
