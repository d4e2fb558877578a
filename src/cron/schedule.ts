import { Cron } from 'croner'

const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'])
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/** A one-shot job's schedule is an ISO-8601 date-time. */
export function isOneShot(schedule: string): boolean {
  return ISO_DATE_TIME.test(schedule.trim())
}

/**
 * Checks a schedule (SPEC §10): a cron expression of 5 or 6 fields, a nickname such as `@hourly`, or an
 * ISO-8601 date-time. Returns why it is not valid, or null. The same parser (croner) schedules the job.
 */
export function scheduleProblem(schedule: string, timezone: string): string | null {
  const text = schedule.trim()
  if (!isTimeZone(timezone)) return `unknown time zone ${JSON.stringify(timezone)}; use an IANA name such as "UTC" or "Europe/Berlin"`
  if (!text) return 'must not be empty'
  if (!isOneShot(text) && !NICKNAMES.has(text.toLowerCase())) {
    const fields = text.split(/\s+/).length
    if (fields !== 5 && fields !== 6) return `must be a cron expression with 5 or 6 fields, a nickname (@hourly, @daily, @weekly, @monthly, @yearly) or an ISO-8601 date-time; got ${fields} field${fields === 1 ? '' : 's'}`
  }
  try {
    new Cron(text, { timezone, paused: true }).stop()
  } catch (error) {
    return (error as Error).message.replace(/^CronPattern: /, '')
  }
  if (isOneShot(text) && Number.isNaN(Date.parse(text.endsWith('Z') || /[+-]\d{2}:\d{2}$/.test(text) ? text : `${text}Z`))) return 'is not a valid date-time'
  return null
}

/** When the schedule fires next, from the parser that runs it; null when it never will. */
export function nextRunOf(schedule: string, timezone: string, after?: Date): Date | null {
  try {
    const cron = new Cron(schedule.trim(), { timezone, paused: true })
    const next = cron.nextRun(after)
    cron.stop()
    return next ?? null
  } catch {
    return null
  }
}
