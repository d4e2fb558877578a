import { Elysia } from 'elysia'
import { z } from 'zod'
import { levelAtLeast, MinimumLevel, readLastLines, type LogEntry } from '../logging/reader'
import { AppError } from '../errors'
import type { LogTap } from '../logging/tap'
import { wholeNumber } from './params'
import { sseResponse } from './sse'

export const LogsQuery = z.object({
  lines: wholeNumber(1, 5000).optional(),
  level: MinimumLevel.optional(),
  since: z
    .string()
    .refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO-8601 date-time such as 2026-11-29T08:00:00Z')
    .optional(),
  q: z.string().min(1).max(1000).optional(),
})

export const LogStreamQuery = LogsQuery.omit({ since: true }).extend({ lines: wholeNumber(0, 5000).optional() })

const tsOf = (entry: LogEntry) => (typeof entry.entry?.ts === 'string' ? Date.parse(entry.entry.ts) : Number.NaN)

const matches = (query: { level?: string; q?: string }) => {
  const needle = query.q?.toLowerCase()
  return (entry: LogEntry) => levelAtLeast(entry, query.level) && (!needle || entry.raw.toLowerCase().includes(needle))
}

const logEvent = (entry: LogEntry) => `event: log\ndata: ${entry.raw}\n\n`

/**
 * GET /api/logs (always needs the token, SPEC §7): the last lines of the log and its rotated files, filtered.
 * GET /api/logs/stream: the same filters, the last `lines` lines, then every new line as it is written (SSE).
 */
export function logRoutes(deps: { logFile: string; flush: () => void; tap?: LogTap }) {
  return new Elysia({ name: 'logs', prefix: '/api' })
    .get(
      '/logs/stream',
      function streamLogs({ query, request }) {
        const tap = deps.tap
        if (!tap) throw new AppError('NOT_FOUND', 'live logs are not available in this process')
        deps.flush()
        const keep = matches(query)
        const backlog = query.lines === 0 ? [] : readLastLines(deps.logFile, query.lines ?? 100, keep)
        return sseResponse(async (write, gone) => {
          // The response's head goes out with its first bytes: without them a client would wait for the first line.
          write(': ready\n\n')
          for (const entry of backlog) write(logEvent(entry))
          await new Promise<void>((resolve) => {
            // Lines are written while this one is being written: subscribing here, in the same tick as the
            // backlog was read, neither misses nor repeats one.
            const unsubscribe = tap.subscribe(
              (entry) => {
                if (keep(entry) && !write(logEvent(entry))) end()
              },
              () => end(),
            )
            function end() {
              unsubscribe()
              resolve()
            }
            request.signal.addEventListener('abort', end, { once: true })
            gone.addEventListener('abort', end, { once: true })
          })
        })
      },
      { query: LogStreamQuery },
    )
    .get(
    '/logs',
    function readLogs({ query }) {
      deps.flush()
      const since = query.since ? Date.parse(query.since) : null
      const keep = matches(query)
      // Lines are in time order, so reading backwards can stop at the first one older than `since`.
      const stop = since === null ? undefined : (entry: LogEntry) => tsOf(entry) < since
      const logs = readLastLines(deps.logFile, query.lines ?? 100, keep, stop).map((entry) => entry.entry ?? { msg: entry.raw })
      return { status: 'ok', logs }
    },
    { query: LogsQuery },
  )
}
