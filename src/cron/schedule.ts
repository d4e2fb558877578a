import { Cron } from 'croner'
import { isTimeZone } from '../util/time-zone'

const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'])
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/
const ISO_PARTS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):(\d{2}))?$/
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate()

/**
 * Why an ISO-8601 date-time names no moment that exists (February 30, month 13, hour 25, …), or null.
 * `Date.parse` would quietly roll such a date over into the next month.
 */
function unrealDateTime(text: string): string | null {
  const parts = ISO_PARTS.exec(text)
  if (!parts) return 'not an ISO-8601 date-time'
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = parts.slice(1).map((part) => (part === undefined ? 0 : Number(part))) as number[]
  if (month! < 1 || month! > 12) return `there is no month ${month}`
  if (day! < 1) return `there is no day ${day}`
  if (day! > daysIn(year!, month!)) return `${MONTHS[month! - 1]} ${year} has ${daysIn(year!, month!)} days`
  if (hour! > 23) return `there is no hour ${hour}`
  if (minute! > 59) return `there is no minute ${minute}`
  if (second! > 59) return `there is no second ${second}`
  if (offsetHours! > 23 || offsetMinutes! > 59) return `there is no UTC offset ${text.slice(-6)}`
  return null
}

/** Why a cron expression that croner accepts never fires — usually a day its months do not have. */
function whyNever(text: string): string {
  const fields = text.split(/\s+/)
  const [day, month] = fields.length === 6 ? [fields[3]!, fields[4]!] : [fields[2]!, fields[3]!]
  const numbers = (field: string) => (/^\d+(,\d+)*$/.test(field) ? field.split(',').map(Number) : null)
  const days = numbers(day)
  const months = numbers(month)
  if (days && months && months.every((m) => m >= 1 && m <= 12)) {
    const names = months.map((m) => MONTHS[m - 1]!)
    const listed = (items: string[], last: string) => (items.length === 1 ? items[0]! : `${items.slice(0, -1).join(', ')} ${last} ${items.at(-1)}`)
    return `${listed(names, 'and')} ${months.length === 1 ? 'has' : 'have'} no day ${listed(days.map(String), 'or')}`
  }
  return 'no date matches its day-of-month and month fields'
}


/** A one-shot job's schedule is an ISO-8601 date-time. */
export function isOneShot(schedule: string): boolean {
  return ISO_DATE_TIME.test(schedule.trim())
}

/**
 * Checks a schedule (SPEC §10): a cron expression of 5 or 6 fields, a nickname such as `@hourly`, or an
 * ISO-8601 date-time. Returns why it cannot be honoured, or null: not parseable, a date-time that does not
 * exist, or an expression that never fires. The same parser (croner) schedules the job. (A one-shot whose
 * time has passed is valid here; the caller decides what that means.)
 */
export function scheduleProblem(schedule: string, timezone: string): string | null {
  const text = schedule.trim()
  if (!isTimeZone(timezone)) return `unknown time zone ${JSON.stringify(timezone)}; use an IANA name such as "UTC" or "Europe/Berlin"`
  if (!text) return 'must not be empty'
  if (!isOneShot(text) && !NICKNAMES.has(text.toLowerCase())) {
    const fields = text.split(/\s+/).length
    if (fields !== 5 && fields !== 6) return `must be a cron expression with 5 or 6 fields, a nickname (@hourly, @daily, @weekly, @monthly, @yearly) or an ISO-8601 date-time; got ${fields} field${fields === 1 ? '' : 's'}`
  }
  if (isOneShot(text)) {
    const unreal = unrealDateTime(text)
    if (unreal) return `is not a real date-time (${unreal})`
  }
  let next: Date | null
  try {
    const cron = new Cron(text, { timezone, paused: true })
    next = cron.nextRun()
    cron.stop()
  } catch (error) {
    return (error as Error).message.replace(/^CronPattern: /, '')
  }
  if (isOneShot(text) && Number.isNaN(Date.parse(text.endsWith('Z') || /[+-]\d{2}:\d{2}$/.test(text) ? text : `${text}Z`))) return 'is not a valid date-time'
  // A one-shot without a next run has passed (the caller says so); a repeating one never fires at all.
  if (!isOneShot(text) && !next) return `never fires (${whyNever(text)})`
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
