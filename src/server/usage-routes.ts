import { Elysia } from 'elysia'
import { z } from 'zod'
import { USAGE_GROUPS, type UsageLedger } from '../agent/usage'
import type { Config } from '../config/schema'
import { AppError } from '../errors'

const DAY_MS = 24 * 60 * 60 * 1000
const UNIT_MS = { m: 60_000, h: 60 * 60_000, d: DAY_MS, w: 7 * DAY_MS } as const

/**
 * A point in time as a query gives it: an ISO date or date-time (`2024-05-01`, `2024-05-01T08:00:00Z`; a date
 * alone is midnight UTC), or a time ago (`30m`, `24h`, `7d`, `2w`), resolved against the request's time later.
 */
const When = z
  .string()
  .regex(
    /^(\d{1,6}[mhdw]|\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)$/,
    { message: 'must be an ISO date or date-time ("2024-05-01", "2024-05-01T08:00:00Z") or a time ago ("24h", "7d", "2w", "30m")', abort: true },
  )
  .refine((text) => /^\d+[mhdw]$/.test(text) || isRealDate(text), 'is not a real date')

/** `2024-02-30` matches the pattern, and Date.parse takes it as March 1st. */
function isRealDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number]
  const date = new Date(Date.UTC(year, month - 1, day))
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day && !Number.isNaN(Date.parse(text))
}

export const UsageQuery = z.object({
  since: When.optional().describe('Start (inclusive); default 30d'),
  until: When.optional().describe('End (exclusive); default now'),
  group_by: z.enum(USAGE_GROUPS, `must be ${USAGE_GROUPS.slice(0, -1).join(', ')} or ${USAGE_GROUPS.at(-1)}`).optional().describe('default day'),
})

const resolve = (text: string, now: number) => {
  const ago = /^(\d+)([mhdw])$/.exec(text)
  return new Date(ago ? now - Number(ago[1]) * UNIT_MS[ago[2] as keyof typeof UNIT_MS] : Date.parse(text))
}

/** GET /api/usage: tokens (and estimated cost) of the answered turns in a time range, grouped. */
export function usageRoutes(deps: { usage: UsageLedger; pricing: Config['pricing']; now: () => number }) {
  return new Elysia({ name: 'usage', prefix: '/api' }).get(
    '/usage',
    function usage({ query }) {
      const now = deps.now()
      const until = query.until ? resolve(query.until, now) : new Date(now)
      const since = query.since ? resolve(query.since, now) : new Date(now - 30 * DAY_MS)
      if (since.getTime() >= until.getTime()) throw new AppError('INVALID_REQUEST', `query.since: must be before until (${until.toISOString()})`)
      const groupBy = query.group_by ?? 'day'
      const { rows, total } = deps.usage.report({ since, until, groupBy, pricing: deps.pricing })
      return { status: 'ok', since: since.toISOString(), until: until.toISOString(), group_by: groupBy, rows, total }
    },
    { query: UsageQuery },
  )
}
