import { Elysia } from 'elysia'
import { z } from 'zod'
import { levelAtLeast, MinimumLevel, readLastLines, type LogEntry } from '../logging/reader'
import { wholeNumber } from './params'

export const LogsQuery = z.object({
  lines: wholeNumber(1, 5000).optional(),
  level: MinimumLevel.optional(),
  since: z
    .string()
    .refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO-8601 date-time such as 2026-11-29T08:00:00Z')
    .optional(),
  q: z.string().min(1).max(1000).optional(),
})

const tsOf = (entry: LogEntry) => (typeof entry.entry?.ts === 'string' ? Date.parse(entry.entry.ts) : Number.NaN)

/** GET /api/logs (always needs the token, SPEC §7): the last lines of the log and its rotated files, filtered. */
export function logRoutes(deps: { logFile: string; flush: () => void }) {
  return new Elysia({ name: 'logs', prefix: '/api' }).get(
    '/logs',
    function readLogs({ query }) {
      deps.flush()
      const since = query.since ? Date.parse(query.since) : null
      const needle = query.q?.toLowerCase()
      const keep = (entry: LogEntry) => levelAtLeast(entry, query.level) && (!needle || entry.raw.toLowerCase().includes(needle))
      // Lines are in time order, so reading backwards can stop at the first one older than `since`.
      const stop = since === null ? undefined : (entry: LogEntry) => tsOf(entry) < since
      const logs = readLastLines(deps.logFile, query.lines ?? 100, keep, stop).map((entry) => entry.entry ?? { msg: entry.raw })
      return { status: 'ok', logs }
    },
    { query: LogsQuery },
  )
}
