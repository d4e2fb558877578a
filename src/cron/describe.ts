import cronstrue from 'cronstrue'
import { Cron } from 'croner'
import { isOneShot } from './schedule'

// Croner's nicknames, which cronstrue does not know.
const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

/**
 * A valid schedule (see scheduleProblem) in words with its time zone — "At 09:00, only on Monday
 * (Europe/Berlin)"; a one-shot reads "Once, at …" — and its next runs, from the parser that runs the job.
 * On the server (GET /api/cron/preview), not in the Control UI: one reading of a schedule for every client, the
 * next runs from croner itself, and 25 KB less for the page to load.
 */
export function describeSchedule(schedule: string, timezone: string, runs = 5, now = new Date()): { description: string; next_runs: string[] } {
  const text = schedule.trim()
  const hasOffset = /[zZ]$|[+-]\d{2}:\d{2}$/.test(text)
  const description = isOneShot(text)
    ? `Once, at ${text.replace('T', ' ')}${hasOffset ? '' : ` (${timezone})`}`
    : `${cronstrue.toString(NICKNAMES[text.toLowerCase()] ?? text, { use24HourTimeFormat: true, verbose: false })} (${timezone})`
  const cron = new Cron(text, { timezone, paused: true })
  try {
    return { description, next_runs: cron.nextRuns(runs, now).map((date) => date.toISOString()) }
  } finally {
    cron.stop()
  }
}
