import { afterAll, describe, expect, test } from 'bun:test'
import type { Database } from 'bun:sqlite'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from '../src/agent/agent'
import { SessionStore } from '../src/agent/sessions'
import { Config } from '../src/config/schema'
import { CronJobs, CronRunner, CronService, type JobView } from '../src/cron/service'
import { DataError } from '../src/errors'
import { createLogger } from '../src/logging/logger'
import { openDatabase } from '../src/storage/db'
import type { RetryPolicy } from '../src/storage/faults'
import { startFakeLlm } from './fakes/llm'
import { ManualClock } from './helpers/manual-clock'
import { waitFor } from './helpers/wait'

/**
 * The scheduler and the runner on a fake clock: a real database and a real agent on the fake LLM, but time
 * moves only when a test advances it — seconds of schedule in milliseconds.
 */
const llm = startFakeLlm()
/** The fake model's reply to "big:…" is big enough that storing the turn needs new database pages (see fillDisk). */
const PADDING = ` ${'x'.repeat(60_000)}`
llm.fallback = (call) =>
  call.lastUser === 'slow' ? { text: 'done slowly', delayMs: 300 } : call.lastUser === 'fail' ? { status: 500 } : { text: `echo: ${call.lastUser}${call.lastUser.startsWith('big:') ? PADDING : ''}` }
afterAll(() => llm.stop())

const { log } = createLogger({ level: 'error', console: false })
const config = Config.parse({ agent: { model: 'fake/echo', maxRetries: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } } })
const T0 = Date.parse('2030-03-25T07:59:00Z')
const SECOND = 1000

function world({ start = T0, db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-cron-')), 'xopcbot.db')), clock = new ManualClock(start), retry }: { start?: number; db?: Database; clock?: ManualClock; retry?: RetryPolicy } = {}) {
  // Built as the gateway builds them: the jobs before the agent, the runner after it.
  const jobs = new CronJobs({ db, log, defaultTimezone: 'UTC', sender: () => undefined, clock })
  const agent = new Agent({ config, env: {}, store: new SessionStore(db), log })
  const runner = new CronRunner({ jobs, agent, sender: () => undefined, log, clock, ...(retry ? { retry } : {}) })
  const cron = new CronService({ jobs, runner })
  const runs = (id: string) => cron.runs(id, 500)
  /** Lets a second of fake time pass, then waits until the runs it started have finished. */
  const second = async (id: string) => {
    clock.advance(SECOND)
    // Runs start on the next turn of the event loop (their row is stored then); then they are waited for.
    await new Promise((resolve) => setImmediate(resolve))
    await waitFor(() => runs(id).every((r) => r.status !== 'running'), { what: 'the runs to finish' })
  }
  const fillDisk = () => {
    const { page_count } = db.query('PRAGMA page_count').get() as { page_count: number }
    db.run(`PRAGMA max_page_count = ${page_count}`)
  }
  const freeDisk = () => db.run('PRAGMA max_page_count = 1073741823')
  return { db, clock, cron, runs, second, fillDisk, freeDisk }
}

const iso = (ms: number) => new Date(ms).toISOString()
const callsFor = (text: string) => llm.calls.filter((c) => c.lastUser === text)

describe('every second', () => {
  test('fires once a second and records each run; toggled off nothing fires, on it resumes; trigger runs once more', async () => {
    const w = world()
    const job = w.cron.create({ name: 'tick', schedule: '* * * * * *', message: 'tick' })
    expect(job).toMatchObject({ name: 'tick', schedule: '* * * * * *', timezone: 'UTC', enabled: true, mode: 'agent', next_run: iso(T0 + SECOND) })
    expect(w.cron.list()).toHaveLength(1)
    expect(Date.parse(w.cron.list()[0]!.next_run!) - w.clock.now()).toBeLessThanOrEqual(1100)
    w.cron.start()
    for (let i = 0; i < 3; i++) await w.second(job.id)
    const runs = w.runs(job.id)
    expect(runs).toHaveLength(3)
    for (const run of runs) expect(run).toMatchObject({ status: 'ok', trigger: 'schedule', reply: 'echo: tick' })
    expect(runs.map((r) => r.started_at).reverse()).toEqual([iso(T0 + 1000), iso(T0 + 2000), iso(T0 + 3000)])
    expect(w.cron.nextRun()).toBe(iso(T0 + 4000))

    const off = w.cron.toggle(job.id, false)
    expect(off).toMatchObject({ enabled: false, next_run: null })
    expect(w.cron.nextRun()).toBeNull()
    const before = w.runs(job.id).length
    for (let i = 0; i < 5; i++) await w.second(job.id) // an observation window: nothing may fire in it
    expect(w.runs(job.id).length).toBe(before)
    expect(w.clock.pending).toEqual([])

    const on = w.cron.toggle(job.id)
    expect(on.enabled).toBe(true)
    await w.second(job.id)
    expect(w.runs(job.id).length).toBe(before + 1)

    w.cron.toggle(job.id, false)
    const quiet = w.runs(job.id).length
    const runId = w.cron.trigger(job.id)
    expect(runId).toMatch(/^run_/)
    const manual = await waitFor(() => w.runs(job.id).find((r) => r.id === runId && r.status === 'ok'), { what: 'the manual run' })
    expect(manual.trigger).toBe('manual')
    expect(w.runs(job.id).length).toBe(quiet + 1)
    w.cron.stop()
  })
})

describe('a cron expression in a time zone', () => {
  test('"0 9 * * 1" in Europe/Berlin fires at 09:00 local time, before and after the switch to summer time', async () => {
    const w = world()
    const job = w.cron.create({ schedule: '0 9 * * 1', message: 'standup', timezone: 'Europe/Berlin' })
    expect(job).toMatchObject({ timezone: 'Europe/Berlin', next_run: '2030-03-25T08:00:00.000Z' })
    w.cron.start()
    await w.second(job.id)
    expect(w.runs(job.id)).toEqual([])
    w.clock.advance(59 * SECOND)
    const first = await waitFor(() => w.runs(job.id).find((r) => r.status === 'ok'), { what: 'the Monday run' })
    expect(first).toMatchObject({ trigger: 'schedule', started_at: '2030-03-25T08:00:00.000Z', reply: 'echo: standup' })
    // Summer time begins on Sunday, 31 March: 09:00 in Berlin is 07:00 UTC from then on.
    expect(w.cron.get(job.id).next_run).toBe('2030-04-01T07:00:00.000Z')
    w.clock.advance(Date.parse('2030-04-01T07:00:00Z') - w.clock.now() - SECOND)
    expect(w.runs(job.id)).toHaveLength(1)
    w.clock.advance(SECOND)
    await waitFor(() => w.runs(job.id).length === 2 && w.runs(job.id)[0]!.status === 'ok', { what: 'the next Monday run' })
    expect(w.runs(job.id)[0]!.started_at).toBe('2030-04-01T07:00:00.000Z')
    w.cron.stop()
  })
})

describe('one-shots', () => {
  test('runs once at its time, then is disabled; it cannot be enabled again, nor created in the past', async () => {
    const w = world()
    const at = iso(T0 + 5 * SECOND)
    const job = w.cron.create({ schedule: at, message: 'once' })
    expect(job.next_run).toBe(at)
    w.cron.start()
    for (let i = 0; i < 4; i++) await w.second(job.id)
    expect(w.runs(job.id)).toEqual([])
    await w.second(job.id)
    expect(w.runs(job.id)).toMatchObject([{ status: 'ok', trigger: 'schedule', started_at: at, reply: 'echo: once' }])
    expect(w.cron.get(job.id)).toMatchObject({ enabled: false, next_run: null, last_status: 'ok', last_run: at })
    for (let i = 0; i < 3; i++) await w.second(job.id)
    expect(w.runs(job.id)).toHaveLength(1)
    expect(() => w.cron.toggle(job.id, true)).toThrow(`enabled: the one-shot time ${at} has passed; create a new job`)
    expect(() => w.cron.create({ schedule: iso(T0), message: 'late' })).toThrow(`schedule: ${iso(T0)} is in the past`)
    w.cron.stop()
  })

  test('a one-shot whose time passed while the gateway was down runs once at the next start (catch-up); other jobs keep their schedule', async () => {
    const w = world()
    const at = iso(T0 + 3 * SECOND)
    const oneShot = w.cron.create({ schedule: at, message: 'wake up' })
    const weekly = w.cron.create({ schedule: '0 9 * * 1', message: 'standup', timezone: 'Europe/Berlin' })
    w.cron.start()
    w.cron.stop()
    w.clock.advance(10 * SECOND) // down

    const again = world({ db: w.db, clock: w.clock })
    again.cron.start()
    const run = await waitFor(() => again.runs(oneShot.id).find((r) => r.status === 'ok'), { what: 'the catch-up run' })
    expect(run).toMatchObject({ trigger: 'catch-up', reply: 'echo: wake up' })
    const jobs = again.cron.list()
    expect(jobs.find((j) => j.id === oneShot.id)).toMatchObject({ enabled: false, next_run: null, last_status: 'ok' })
    expect(jobs.find((j) => j.id === weekly.id)).toMatchObject({ schedule: '0 9 * * 1', timezone: 'Europe/Berlin', enabled: true, next_run: weekly.next_run })
    again.cron.stop()

    const third = world({ db: w.db, clock: w.clock })
    third.cron.start()
    w.clock.advance(10 * SECOND)
    expect(await third.cron.idle(1000)).toBe(true)
    expect(third.runs(oneShot.id)).toHaveLength(1)
    third.cron.stop()
  })
})

describe('overlap and failures', () => {
  test('a slow job does not overlap itself (its ticks are skipped); a failing job records the error and the scheduler keeps going', async () => {
    const w = world()
    const slow = w.cron.create({ schedule: '* * * * * *', message: 'slow' })
    const failing = w.cron.create({ schedule: '* * * * * *', message: 'fail' })
    const callsBefore = callsFor('slow').length
    w.cron.start()
    w.clock.advance(SECOND)
    await waitFor(() => callsFor('slow').length === callsBefore + 1, { what: 'the slow run to call the model' })
    // Three ticks while it runs: all skipped.
    for (let i = 0; i < 3; i++) w.clock.advance(SECOND)
    expect(w.runs(slow.id)).toMatchObject([{ status: 'running' }])
    await waitFor(() => w.runs(slow.id)[0]!.status === 'ok', { what: 'the slow run to end' })
    await w.second(slow.id)
    await waitFor(() => w.runs(slow.id).filter((r) => r.status === 'ok').length >= 2, { what: 'two slow runs' })
    const slowRuns = w.runs(slow.id).reverse()
    expect(slowRuns).toHaveLength(2)
    expect(callsFor('slow').length).toBe(callsBefore + 2)
    for (let i = 1; i < slowRuns.length; i++) expect(Date.parse(slowRuns[i]!.started_at)).toBeGreaterThanOrEqual(Date.parse(slowRuns[i - 1]!.finished_at!))
    expect(slowRuns[0]).toMatchObject({ started_at: iso(T0 + 1000), finished_at: iso(T0 + 4000), reply: 'done slowly' })

    for (let i = 0; i < 3; i++) await w.second(failing.id)
    const failed = w.runs(failing.id).filter((r) => r.status === 'failed')
    expect(failed.length).toBeGreaterThanOrEqual(3)
    expect(failed[0]!.error).toContain('HTTP 500')
    expect(w.cron.nextRun()).toBe(iso(w.clock.now() + SECOND))
    w.cron.stop()
    expect(await w.cron.idle(2000)).toBe(true)
  })

  test('a scheduled run that hit a storage fault is retried on the clock, its ticks skipped meanwhile, and recorded once', async () => {
    const w = world({ retry: { attempts: 3, firstDelayMs: 1500, maxDelayMs: 30_000 } })
    const job = w.cron.create({ schedule: '* * * * * *', message: 'big:scheduled' })
    w.cron.start()
    w.fillDisk()
    w.clock.advance(SECOND)
    await waitFor(() => w.clock.pending.includes(1500), { what: 'a retry in 1.5 s' })
    expect(w.runs(job.id)).toMatchObject([{ status: 'running', trigger: 'schedule' }])
    w.clock.advance(SECOND) // a tick while the run waits: skipped
    expect(w.runs(job.id)).toHaveLength(1)
    w.clock.advance(500) // the retry: the disk is still full
    await waitFor(() => callsFor('big:scheduled').length === 2 && w.clock.pending.includes(3000), { what: 'the second attempt to fail' })
    w.freeDisk()
    w.clock.advance(3000)
    await waitFor(() => w.runs(job.id).at(-1)!.status === 'ok', { what: 'the run to finish' })
    const first = w.runs(job.id).at(-1)!
    expect(first).toMatchObject({ started_at: iso(T0 + SECOND), reply: `echo: big:scheduled${PADDING}` })
    expect(callsFor('big:scheduled')).toHaveLength(3)
    w.cron.stop()
  })
})

describe('changes while a job is due', () => {
  test('toggled off or deleted before its time, it does not fire; disabled behind the scheduler’s back, the tick drops it', async () => {
    const w = world()
    const a = w.cron.create({ schedule: '* * * * * *', message: 'a' })
    const b = w.cron.create({ schedule: '* * * * * *', message: 'b' })
    const c = w.cron.create({ schedule: '* * * * * *', message: 'c' })
    w.cron.start()
    expect(w.clock.pending).toEqual([SECOND])
    w.cron.toggle(a.id, false)
    w.cron.delete(b.id)
    // Another writer (a second service on the same database) disables c: this scheduler still has it due.
    world({ db: w.db, clock: new ManualClock(T0) }).cron.toggle(c.id, false)
    expect(w.cron.nextRun()).toBe(iso(T0 + SECOND))
    w.clock.advance(SECOND)
    expect(await w.cron.idle(1000)).toBe(true)
    expect(w.runs(a.id)).toEqual([])
    expect(() => w.runs(b.id)).toThrow('no cron job')
    expect(w.runs(c.id)).toEqual([])
    expect(w.cron.nextRun()).toBeNull()
    expect(w.clock.pending).toEqual([])
    w.cron.stop()
  })

  test('a job deleted during its run: nothing is recorded for it', async () => {
    const w = world()
    const job = w.cron.create({ schedule: '@yearly', message: 'slow' })
    const callsBefore = callsFor('slow').length
    w.cron.trigger(job.id)
    await waitFor(() => callsFor('slow').length === callsBefore + 1, { what: 'the run to call the model' })
    w.cron.delete(job.id)
    expect(await w.cron.idle(5000)).toBe(true)
    expect(w.db.query('SELECT COUNT(*) AS n FROM cron_runs').get()).toEqual({ n: 0 })
  })
})

describe('rows are parsed, not cast', () => {
  test('a damaged job row is a DataError naming the row and the field', () => {
    const w = world()
    const job: JobView = w.cron.create({ schedule: '@daily', message: 'x' })
    w.db.run('PRAGMA ignore_check_constraints = 1')
    w.db.query("UPDATE cron_jobs SET enabled = 7, mode = 'loud' WHERE id = $id").run({ id: job.id })
    let error: unknown
    try {
      w.cron.list()
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(DataError)
    expect((error as Error).message).toContain(`damaged cron_jobs row "${job.id}"`)
    expect((error as Error).message).toContain('enabled:')
    expect((error as Error).message).toContain('mode:')
    expect(() => w.cron.get(job.id)).toThrow(DataError)
  })
})
