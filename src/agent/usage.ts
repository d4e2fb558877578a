import type { Database } from 'bun:sqlite'
import type { Config } from '../config/schema'

export const USAGE_GROUPS = ['day', 'session', 'model', 'channel'] as const
export type UsageGroup = (typeof USAGE_GROUPS)[number]

/** How turns without a channel (the HTTP API, cron jobs that deliver nowhere) are grouped by channel. */
export const NO_CHANNEL = '(none)'

export interface UsageTotals {
  input_tokens: number
  output_tokens: number
  turns: number
  /** USD, estimated from `pricing`; present when a price is configured for a model of the row */
  cost?: number
}

export interface UsageRow extends UsageTotals {
  key: string
}

export interface UsageEntry {
  at: string
  session: string
  channel: string | null
  model: string
  inputTokens: number
  outputTokens: number
}

const KEY_OF: Record<UsageGroup, string> = {
  day: 'substr(at, 1, 10)',
  session: 'session_key',
  model: 'model',
  channel: `COALESCE(channel, '${NO_CHANNEL}')`,
}

/** `2024-05-01` of an ISO time: usage days are UTC days. */
export const utcDay = (at: Date | string) => (typeof at === 'string' ? at : at.toISOString()).slice(0, 10)

/**
 * Tokens used per turn (table `turn_usage`, one row per answered turn, written in the turn's transaction).
 * Rows outlive their session: deleting a conversation does not rewrite what it cost. Today's totals are kept in
 * memory, so that checking the daily budget costs a turn nothing.
 */
export class UsageLedger {
  private readonly insertRow: ReturnType<Database['query']>
  private today: { day: string; totals: UsageTotals } | null = null

  constructor(private readonly db: Database) {
    this.insertRow = db.query(
      `INSERT INTO turn_usage (at, session_key, channel, model, input_tokens, output_tokens)
       VALUES ($at, $session, $channel, $model, $input, $output)`,
    )
  }

  /** Writes a turn's row; runs inside the caller's transaction (`count` it once that write went through). */
  record(entry: UsageEntry) {
    this.insertRow.run({ at: entry.at, session: entry.session, channel: entry.channel, model: entry.model, input: entry.inputTokens, output: entry.outputTokens })
  }

  /** Adds a written row to today's totals (sign 1), or takes it out again when its transaction did not commit (-1). */
  count(entry: UsageEntry, sign: 1 | -1) {
    if (this.today?.day !== utcDay(entry.at)) return
    this.today.totals.input_tokens += sign * entry.inputTokens
    this.today.totals.output_tokens += sign * entry.outputTokens
    this.today.totals.turns += sign
  }

  /** Input and output tokens and turns of the current UTC day. */
  todayTotals(now: Date): UsageTotals {
    const day = utcDay(now)
    if (this.today?.day !== day) {
      const row = this.db
        .query('SELECT COALESCE(SUM(input_tokens), 0) AS input_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens, COUNT(*) AS turns FROM turn_usage WHERE at >= $from')
        .get({ from: `${day}T00:00:00.000Z` }) as UsageTotals
      this.today = { day, totals: { ...row } }
    }
    return { ...this.today.totals }
  }

  /** Usage of turns in [since, until), grouped; `cost` where `pricing` has a price for the row's models. */
  report({ since, until, groupBy, pricing }: { since: Date; until: Date; groupBy: UsageGroup; pricing: Config['pricing'] }): { rows: UsageRow[]; total: UsageTotals } {
    const parts = this.db
      .query(
        `SELECT ${KEY_OF[groupBy]} AS key, model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, COUNT(*) AS turns
         FROM turn_usage WHERE at >= $since AND at < $until GROUP BY 1, 2 ORDER BY 1`,
      )
      .all({ since: since.toISOString(), until: until.toISOString() }) as (UsageRow & { model: string })[]
    const rows = new Map<string, UsageRow>()
    const total: UsageTotals = { input_tokens: 0, output_tokens: 0, turns: 0 }
    for (const part of parts) {
      let row = rows.get(part.key)
      if (!row) rows.set(part.key, (row = { key: part.key, input_tokens: 0, output_tokens: 0, turns: 0 }))
      for (const totals of [row, total]) {
        totals.input_tokens += part.input_tokens
        totals.output_tokens += part.output_tokens
        totals.turns += part.turns
        const price = pricing[part.model]
        if (price) totals.cost = (totals.cost ?? 0) + (part.input_tokens * price.input + part.output_tokens * price.output) / 1_000_000
      }
    }
    const rounded = <T extends UsageTotals>(totals: T): T => (totals.cost === undefined ? totals : { ...totals, cost: Math.round(totals.cost * 1e9) / 1e9 })
    return { rows: [...rows.values()].map(rounded), total: rounded(total) }
  }

}
