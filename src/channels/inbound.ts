import type { Database } from 'bun:sqlite'
import { randomUUID } from 'node:crypto'
import type { Agent } from '../agent/agent'
import { waitUntil } from '../lifecycle/timeout'
import type { Logger } from '../logging/logger'
import type { Channel, Incoming } from './channel'

type StoredState = 'queued' | 'processing' | 'delivering' | 'delivered' | 'failed'
export type MessageState = 'queued' | 'processing' | 'delivered' | 'failed'

interface Row {
  id: string
  channel: string
  chat_id: string
  content: string
  state: StoredState
  reply: string | null
  error: string | null
  created_at: string
  updated_at: string
}

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

const FINAL = new Set<StoredState>(['delivered', 'failed'])

function view(row: Row): InboundMessage {
  return {
    id: row.id,
    channel: row.channel,
    chat_id: row.chat_id,
    state: row.state === 'delivering' ? 'processing' : row.state,
    ...(row.reply !== null ? { reply: row.reply } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    created_at: row.created_at,
    updated_at: row.updated_at,
  }
}

/**
 * The durable inbound queue (SPEC §6, §8). Every message from /api/message, Telegram or a webhook is stored
 * before it is acknowledged, then answered by the agent in the chat's session, one at a time per chat, and
 * the reply delivered through the channel: queued → processing → delivered | failed.
 *
 * Crash safety: the reply is stored in the same transaction as the turn's history; a message is marked
 * "delivering" just before it is handed to the channel. At start, queued messages and turns that did not
 * finish are processed again, stored replies are delivered, and a message caught while delivering is marked
 * failed rather than sent again — a reply is delivered at most once.
 */
export class InboundQueue {
  private readonly chains = new Map<string, Promise<void>>()
  private readonly waiters = new Map<string, Set<(message: InboundMessage) => void>>()
  private active = 0
  private stopping = false
  private readonly log: Logger

  constructor(
    private readonly deps: {
      db: Database
      agent: Agent
      channel: (name: string) => Channel | undefined
      log: Logger
      /** strips configured secrets from error texts before they are stored */
      redact?: (text: string) => string
    },
  ) {
    this.log = deps.log.withTag('inbound')
  }

  /** Stores one message and schedules it; resolves to its id. The same external event gives the same id. */
  accept(message: Incoming, source: string): string {
    const [id] = this.acceptAll([message], source)
    return id!
  }

  /** Stores several messages (and runs `alongside`, e.g. a Telegram offset) in one transaction, then schedules them. */
  acceptAll(messages: Incoming[], source: string, alongside?: () => void): string[] {
    const now = new Date().toISOString()
    const ids: string[] = []
    const fresh: string[] = []
    const insert = this.deps.db.query(
      `INSERT INTO inbound_messages (id, channel, chat_id, content, sender, source, external_id, state, created_at, updated_at)
       VALUES ($id, $channel, $chat_id, $content, $sender, $source, $external_id, 'queued', $now, $now)
       ON CONFLICT (channel, external_id) DO NOTHING`,
    )
    this.deps.db.transaction(() => {
      for (const message of messages) {
        const id = `msg_${randomUUID().replaceAll('-', '').slice(0, 24)}`
        const result = insert.run({ id, channel: message.channel, chat_id: message.chatId, content: message.content, sender: message.sender ?? null, source, external_id: message.externalId ?? null, now })
        if (result.changes > 0) {
          ids.push(id)
          fresh.push(id)
        } else {
          const existing = this.deps.db.query('SELECT id FROM inbound_messages WHERE channel = $channel AND external_id = $external_id').get({ channel: message.channel, external_id: message.externalId ?? null }) as { id: string }
          ids.push(existing.id)
        }
      }
      alongside?.()
    }).immediate()
    for (const id of fresh) this.schedule(id)
    return ids
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
      const timer = setTimeout(() => done(this.get(id)!), timeoutMs)
      if (!this.waiters.has(id)) this.waiters.set(id, new Set())
      this.waiters.get(id)!.add(done)
    })
  }

  /** Counts by state, as clients see them. */
  depth(): Record<MessageState, number> {
    const counts: Record<MessageState, number> = { queued: 0, processing: 0, delivered: 0, failed: 0 }
    for (const row of this.deps.db.query('SELECT state, COUNT(*) AS n FROM inbound_messages GROUP BY state').all() as { state: StoredState; n: number }[]) {
      counts[row.state === 'delivering' ? 'processing' : row.state] += row.n
    }
    return counts
  }

  /** After a start: settle what a crash interrupted, then schedule everything pending in arrival order. */
  recover() {
    const now = new Date().toISOString()
    const interrupted = this.deps.db
      .query(`UPDATE inbound_messages SET state = 'failed', error = 'the gateway stopped while this reply was being delivered; it was not sent again, so it may not have arrived', updated_at = $now WHERE state = 'delivering'`)
      .run({ now }).changes
    if (interrupted) this.log.warn('replies interrupted while being delivered were marked failed', { count: interrupted })
    const pending = this.deps.db.query(`SELECT id FROM inbound_messages WHERE state IN ('queued', 'processing') ORDER BY seq`).all() as { id: string }[]
    if (pending.length) this.log.info('resuming stored messages', { count: pending.length })
    for (const { id } of pending) this.schedule(id)
  }

  /** No new work starts; what is running finishes (the graceful stop waits with `idle`). */
  stop() {
    this.stopping = true
  }

  idle(timeoutMs: number): Promise<boolean> {
    return waitUntil(() => this.active === 0, timeoutMs)
  }

  private row(id: string): Row | null {
    return this.deps.db.query('SELECT id, channel, chat_id, content, state, reply, error, created_at, updated_at FROM inbound_messages WHERE id = $id').get({ id }) as Row | null
  }

  private setState(id: string, state: StoredState, fields: { reply?: string; error?: string; delivered_id?: string } = {}) {
    this.deps.db
      .query('UPDATE inbound_messages SET state = $state, reply = COALESCE($reply, reply), error = $error, delivered_id = COALESCE($delivered_id, delivered_id), updated_at = $now WHERE id = $id')
      .run({ id, state, reply: fields.reply ?? null, error: fields.error === undefined ? null : (this.deps.redact?.(fields.error) ?? fields.error), delivered_id: fields.delivered_id ?? null, now: new Date().toISOString() })
    if (FINAL.has(state)) {
      const message = this.get(id)!
      for (const waiter of [...(this.waiters.get(id) ?? [])]) waiter(message)
      this.waiters.delete(id)
    }
  }

  /** Messages of one chat are processed one after another, in the order they were stored. */
  private schedule(id: string) {
    const row = this.row(id)
    if (!row) return
    const chat = `${row.channel}:${row.chat_id}`
    const next = (this.chains.get(chat) ?? Promise.resolve()).then(() => this.process(id))
    this.chains.set(chat, next)
    next.then(() => {
      if (this.chains.get(chat) === next) this.chains.delete(chat)
    })
  }

  private async process(id: string) {
    if (this.stopping) return
    this.active++
    try {
      let row = this.row(id)
      if (!row || FINAL.has(row.state)) return
      const channel = this.deps.channel(row.channel)
      if (!channel) {
        this.setState(id, 'failed', { error: `channel "${row.channel}" is not configured or not enabled any more` })
        return
      }
      if (row.reply === null) {
        this.setState(id, 'processing')
        try {
          await this.deps.agent.turn({
            session: `${row.channel}:${row.chat_id}`,
            message: row.content,
            channel: row.channel,
            chatId: row.chat_id,
            onStored: (reply) => {
              this.deps.db.query('UPDATE inbound_messages SET reply = $reply, updated_at = $now WHERE id = $id').run({ id, reply, now: new Date().toISOString() })
            },
          })
        } catch (error) {
          this.setState(id, 'failed', { error: (error as Error).message })
          return
        }
        row = this.row(id)!
      }
      if (this.stopping) return
      this.setState(id, 'delivering')
      try {
        const deliveredId = await channel.send(row.chat_id, row.reply ?? '', id)
        this.setState(id, 'delivered', { delivered_id: deliveredId })
      } catch (error) {
        this.log.error('delivery failed', { id, channel: row.channel, chatId: row.chat_id, err: error })
        this.setState(id, 'failed', { error: `delivery failed: ${(error as Error).message}` })
      }
    } catch (error) {
      this.log.error('processing a message failed', { id, err: error })
    } finally {
      this.active--
    }
  }
}
