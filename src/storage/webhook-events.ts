import type { Database } from 'bun:sqlite'

/**
 * How long an accepted webhook event is remembered (SPEC §8: 10 minutes). It must outlast the whole span in which
 * a timestamp is accepted — from 300 s before the gateway's clock to 300 s after, counted in whole seconds — or a
 * request that arrived early in that span could be replayed late in it: so 602 s at the least.
 */
export const WEBHOOK_REPLAY_WINDOW_MS = Math.max(10 * 60_000, (2 * 300 + 2) * 1000)

/** Expired rows deleted per recorded event: enough to keep up with any arrival rate, never a long delete. */
const PRUNE_BATCH = 64

/**
 * Keys of webhook events accepted recently (event ids and signatures), per channel, so that a resent or
 * replayed event is recognised — across restarts, since they live in the database (`webhook_events`).
 */
export class WebhookEventLog {
  constructor(
    private readonly db: Database,
    private readonly windowMs = WEBHOOK_REPLAY_WINDOW_MS,
  ) {}

  /** Whether any of `keys` was accepted on `channel` within the window before `nowMs`. */
  seen(channel: string, keys: readonly string[], nowMs: number): boolean {
    const found = this.db.query('SELECT 1 FROM webhook_events WHERE channel = $channel AND event_id = $key AND received_at > $since')
    return keys.some((key) => found.get({ channel, key, since: nowMs - this.windowMs }) !== null)
  }

  /**
   * Remembers `keys` as accepted at `nowMs`. Run it inside the transaction that stores the event's message, so
   * that one is never stored without the other. Also deletes a bounded batch of expired rows.
   */
  record(channel: string, keys: readonly string[], nowMs: number) {
    this.db
      .query('DELETE FROM webhook_events WHERE rowid IN (SELECT rowid FROM webhook_events WHERE received_at <= $before ORDER BY received_at LIMIT $limit)')
      .run({ before: nowMs - this.windowMs, limit: PRUNE_BATCH })
    const insert = this.db.query(
      'INSERT INTO webhook_events (channel, event_id, received_at) VALUES ($channel, $key, $now) ON CONFLICT (channel, event_id) DO UPDATE SET received_at = excluded.received_at',
    )
    for (const key of keys) insert.run({ channel, key, now: nowMs })
  }

  /** How many keys are stored. */
  size(): number {
    return (this.db.query('SELECT COUNT(*) AS n FROM webhook_events').get() as { n: number }).n
  }
}
