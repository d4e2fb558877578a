import { describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cronTool } from '../src/agent/tools'
import { scheduleProblem } from '../src/cron/schedule'
import { CronJobs } from '../src/cron/service'
import { AppError } from '../src/errors'
import { createLogger } from '../src/logging/logger'
import { openDatabase } from '../src/storage/db'

describe('scheduleProblem', () => {
  test('a cron expression that never fires is refused, with the reason', () => {
    expect(scheduleProblem('0 0 30 2 *', 'UTC')).toBe('never fires (February has no day 30)')
    expect(scheduleProblem('0 0 31 4 *', 'UTC')).toBe('never fires (April has no day 31)')
    expect(scheduleProblem('0 0 0 31 2 *', 'UTC')).toBe('never fires (February has no day 31)')
    expect(scheduleProblem('0 0 31 2,4,6 *', 'Europe/Berlin')).toBe('never fires (February, April and June have no day 31)')
    expect(scheduleProblem('0 0 30,31 2 *', 'UTC')).toBe('never fires (February has no day 30 or 31)')
    expect(scheduleProblem('0 0 31 FEB *', 'UTC')).toBe('never fires (no date matches its day-of-month and month fields)')
  })

  test('expressions that do fire, however rarely, are fine', () => {
    for (const schedule of ['0 0 29 2 *', '0 0 30 2 1', '0 9 * * 1', '* * * * * *', '@yearly', '0 0 31 * *']) expect(scheduleProblem(schedule, 'UTC')).toBeNull()
  })

  test('an ISO date-time that does not exist is not a real date-time (not "in the past", not rolled over)', () => {
    const cases: [string, string][] = [
      ['2026-02-30T10:00:00Z', 'February 2026 has 28 days'],
      ['2099-02-29T10:00:00', 'February 2099 has 28 days'],
      ['2099-04-31T10:00:00+02:00', 'April 2099 has 30 days'],
      ['2099-13-01T10:00:00Z', 'there is no month 13'],
      ['2099-00-10T10:00:00Z', 'there is no month 0'],
      ['2099-01-00T10:00:00Z', 'there is no day 0'],
      ['2099-01-01T25:00:00Z', 'there is no hour 25'],
      ['2099-01-01T24:00:00Z', 'there is no hour 24'],
      ['2099-01-01T10:60Z', 'there is no minute 60'],
      ['2099-01-01T10:00:61Z', 'there is no second 61'],
      ['2099-01-01T10:00:00+24:00', 'there is no UTC offset +24:00'],
    ]
    for (const [schedule, why] of cases) expect({ schedule, problem: scheduleProblem(schedule, 'UTC') }).toEqual({ schedule, problem: `is not a real date-time (${why})` })
    expect(scheduleProblem('2096-02-29T10:00:00Z', 'UTC')).toBeNull()
    expect(scheduleProblem('2099-12-31T23:59:59.999+14:00', 'UTC')).toBeNull()
  })
})

describe('the same rules for every way in', () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-cron-')), 'xopcbot.db'))
  const { log } = createLogger({ level: 'error', console: false })
  // Only validation is exercised: nothing runs, so the jobs alone (no agent, no runner) are enough.
  const cron = new CronJobs({ db, log, defaultTimezone: 'UTC', sender: () => undefined })

  test('CronJobs.create (behind POST /api/cron/create and `xopcbot cron add`): 400 naming the field', () => {
    const refusal = (schedule: string) => {
      try {
        cron.create({ schedule, message: 'x' })
      } catch (error) {
        expect(error).toBeInstanceOf(AppError)
        expect((error as AppError).status).toBe(400)
        return (error as AppError).message
      }
      throw new Error(`${schedule} was accepted`)
    }
    expect(refusal('0 0 30 2 *')).toBe('schedule: never fires (February has no day 30)')
    expect(refusal('2099-02-30T10:00:00Z')).toBe('schedule: is not a real date-time (February 2099 has 28 days)')
    expect(refusal('2026-02-30T10:00:00Z')).toBe('schedule: is not a real date-time (February 2026 has 28 days)')
    expect(refusal('2001-01-01T00:00:00Z')).toBe('schedule: 2001-01-01T00:00:00Z is in the past')
    expect(cron.list()).toEqual([])
  })

  test("the agent's cron tool gets the same answer, and nothing is created", async () => {
    const tool = cronTool(cron)
    expect(await tool.run({ action: 'create', schedule: '0 0 31 4 *', message: 'x' })).toEqual({ error: 'schedule: never fires (April has no day 31)' })
    expect(await tool.run({ action: 'create', schedule: '2099-13-01T09:00:00Z', message: 'x' })).toEqual({ error: 'schedule: is not a real date-time (there is no month 13)' })
    expect(cron.list()).toEqual([])
  })
})
