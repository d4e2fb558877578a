import type { Database } from 'bun:sqlite'
import { randomUUID } from 'node:crypto'
import { Cron } from 'croner'
import { z } from 'zod'
import type { Agent } from '../agent/agent'
import { SessionKey } from '../agent/sessions'
import type { Channel } from '../channels/channel'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { retryDelay, RETRY_POLICY, RetryTimer, storageFaultOf, systemClock, type Clock, type RetryPolicy } from '../storage/faults'
import { serialByKey } from '../util/serial'
import { waitUntil } from '../util/timeout'
import { isOneShot, nextRunOf, scheduleProblem } from './schedule'

/** Fields of a new job (SPEC §10). */
export const JobInput = z.strictObject({
  name: z.string().min(1, 'must be a non-empty string').max(200).optional(),
  schedule: z.string().min(1, 'must be a non-empty string').max(200),
  timezone: z.string().min(1).max(100).optional(),
  enabled: z.boolean().optional(),
  mode: z.enum(['agent', 'direct'], 'must be "agent" or "direct"').optional(),
  message: z.string().min(1, 'must be a non-empty string').max(100_000),
  channel: z.string().min(1).max(64).optional(),
  chat_id: z.union([z.string().min(1).max(256), z.int()], 'must be a string or an integer').optional(),
  session: SessionKey.optional(),
})
export type JobInput = z.infer<typeof JobInput>

export interface Job {
  id: string
  name: string
  schedule: string
  timezone: string
  enabled: boolean
  mode: 'agent' | 'direct'
  message: string
  channel: string | null
  chat_id: string | null
  session: string | null
  created_at: string
  updated_at: string
}

export interface JobView extends Job {
  next_run: string | null
  last_run: string | null
  last_status: 'running' | 'ok' | 'failed' | null
}

export interface Run {
  id: string
  job_id: string
  trigger: 'schedule' | 'manual' | 'catch-up'
  status: 'running' | 'ok' | 'failed'
  started_at: string
  finished_at: string | null
  reply?: string
  error?: string
}

type JobRow = Omit<Job, 'enabled'> & { enabled: number }

/**
 * A run on its way. What it has done survives a storage fault, so that a retry neither runs the work again
 * once it produced an outcome (a delivery is never repeated) nor loses that outcome.
 */
interface RunState {
  id: string
  job: Job
  trigger: Run['trigger']
  /** when it began (or, if it never could, when it was due) */
  startedAt: string
  /** its row ("running") is stored */
  begun: boolean
  /** storage faults before an outcome */
  faults: number
  outcome?: { status: 'ok'; reply: string } | { status: 'failed'; error: string }
  /** failed attempts to store the outcome */
  outcomeWrites: number
}

/** A one-shot whose time has come (croner still reports a time in the current second as next). */
function oneShotPassed(schedule: string, timezone: string): boolean {
  if (!isOneShot(schedule)) return false
  const next = nextRunOf(schedule, timezone)
  return !next || next.getTime() <= Date.now()
}

const fromRow = (row: JobRow): Job => ({ ...row, enabled: row.enabled === 1 })
const notFound = (id: string) => new AppError('JOB_NOT_FOUND', `no cron job ${JSON.stringify(id)}`)
const invalid = (message: string) => new AppError('INVALID_REQUEST', message)

/**
 * Cron jobs (SPEC §10) over croner: jobs and runs live in the database; enabled jobs are scheduled at
 * start; changes take effect at once; a job never overlaps itself; one-shots run once (also when their time
 * passed while the gateway was down) and then disable themselves. Runs use the agent and the channels —
 * the same turn and delivery code as inbound messages.
 *
 * A run that hits a transient storage fault (full disk, a held lock) before it has an outcome is tried again
 * after 1 s, 2 s, 4 s, … (RETRY_POLICY) and recorded failed after the last attempt; an outcome that could not
 * be stored is written again later until it is. A job waiting for such a retry skips its ticks (no overlap).
 */
export class CronService {
  /** when each scheduled job is due next (epoch ms); one timer serves them all */
  private readonly due = new Map<string, number>()
  private timer: ReturnType<typeof setTimeout> | null = null
  /** parsed schedules, shared by jobs with the same expression and time zone */
  private readonly patterns = new Map<string, Cron>()
  /** each job's runs, one at a time in the order they were asked for */
  private readonly runsByJob = serialByKey()
  private readonly running = new Set<string>()
  /** runs waiting for a retry after a storage fault, by run id */
  private readonly pendingRuns = new Map<string, RunState>()
  private readonly retries: RetryTimer<string>
  private readonly policy: RetryPolicy
  private active = 0
  private stopping = false
  private readonly log: Logger

  constructor(
    private readonly deps: {
      db: Database
      agent: Agent
      channel: (name: string) => Channel | undefined
      log: Logger
      defaultTimezone: string
      /** strips configured secrets from error texts before they are stored */
      redact?: (text: string) => string
      /** when retries after a storage fault are due (default: the system clock) */
      clock?: Clock
      /** how often and how soon a run that hit a storage fault is tried again (default RETRY_POLICY) */
      retry?: RetryPolicy
    },
  ) {
    this.log = deps.log.withTag('cron')
    this.policy = deps.retry ?? RETRY_POLICY
    this.retries = new RetryTimer((runId) => this.resume(runId), deps.clock ?? systemClock)
  }

  /** Schedules every enabled job; settles runs a crash interrupted; runs one-shots whose time has passed. */
  start() {
    const now = new Date().toISOString()
    const interrupted = this.deps.db.query(`UPDATE cron_runs SET status = 'failed', error = 'interrupted: the gateway stopped during this run', finished_at = $now WHERE status = 'running'`).run({ now }).changes
    if (interrupted) this.log.warn('runs interrupted by a stop were marked failed', { count: interrupted })
    const jobs = (this.deps.db.query('SELECT * FROM cron_jobs WHERE enabled = 1 ORDER BY created_at').all() as JobRow[]).map(fromRow)
    for (const job of jobs) {
      if (oneShotPassed(job.schedule, job.timezone)) {
        this.log.info('one-shot job missed while the gateway was down: running it now', { job: job.id, schedule: job.schedule })
        void this.runNow(this.newRun(job, 'catch-up'))
      } else this.schedule(job)
    }
    this.arm()
    this.log.info('cron started', { jobs: this.due.size })
  }

  /**
   * Stops every timer; runs in progress finish (the graceful stop waits with `idle`). Runs waiting for a
   * retry are not waited for: their rows stay "running" and the next start records them as interrupted.
   */
  stop() {
    this.stopping = true
    this.retries.stop()
    this.pendingRuns.clear()
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.due.clear()
    for (const pattern of this.patterns.values()) pattern.stop()
    this.patterns.clear()
  }

  idle(timeoutMs: number): Promise<boolean> {
    return waitUntil(() => this.active === 0, timeoutMs)
  }

  count(): { jobs: number; enabled: number } {
    return this.deps.db.query('SELECT COUNT(*) AS jobs, COALESCE(SUM(enabled), 0) AS enabled FROM cron_jobs').get() as { jobs: number; enabled: number }
  }

  /** The earliest next run over all scheduled jobs. */
  nextRun(): string | null {
    let next = Infinity
    for (const at of this.due.values()) if (at < next) next = at
    return Number.isFinite(next) ? new Date(next).toISOString() : null
  }

  list(): JobView[] {
    return (this.deps.db.query('SELECT * FROM cron_jobs ORDER BY created_at, id').all() as JobRow[]).map((row) => this.view(fromRow(row)))
  }

  get(id: string): JobView {
    const row = this.deps.db.query('SELECT * FROM cron_jobs WHERE id = $id').get({ id }) as JobRow | null
    if (!row) throw notFound(id)
    return this.view(fromRow(row))
  }

  create(input: JobInput): JobView {
    const timezone = input.timezone ?? this.deps.defaultTimezone
    const schedule = input.schedule.trim()
    const problem = scheduleProblem(schedule, timezone)
    if (problem) throw invalid(problem.startsWith('unknown time zone') ? `timezone: ${problem}` : `schedule: ${problem}`)
    if (oneShotPassed(schedule, timezone)) throw invalid(`schedule: ${schedule} is in the past`)
    const mode = input.mode ?? 'agent'
    const chatId = input.chat_id === undefined ? null : String(input.chat_id)
    if (mode === 'direct' && (!input.channel || chatId === null)) throw invalid('channel and chat_id: are required for mode "direct" (where the message is delivered)')
    if ((input.channel === undefined) !== (chatId === null)) throw invalid(input.channel ? 'chat_id: is required with channel' : 'channel: is required with chat_id')
    if (input.channel && !this.deps.channel(input.channel)) throw invalid(`channel: no enabled channel ${JSON.stringify(input.channel)}`)
    const now = new Date().toISOString()
    const job: Job = {
      id: `job_${randomUUID().replaceAll('-', '').slice(0, 16)}`,
      name: input.name ?? (input.message.length > 40 ? `${input.message.slice(0, 40)}…` : input.message),
      schedule,
      timezone,
      enabled: input.enabled ?? true,
      mode,
      message: input.message,
      channel: input.channel ?? null,
      chat_id: chatId,
      session: input.session ?? null,
      created_at: now,
      updated_at: now,
    }
    this.deps.db
      .query(
        `INSERT INTO cron_jobs (id, name, schedule, timezone, enabled, mode, message, channel, chat_id, session, created_at, updated_at)
         VALUES ($id, $name, $schedule, $timezone, $enabled, $mode, $message, $channel, $chat_id, $session, $created_at, $updated_at)`,
      )
      .run({ ...job, enabled: job.enabled ? 1 : 0 })
    if (job.enabled) this.schedule(job)
    this.log.info('job created', { job: job.id, schedule, timezone, mode })
    return this.view(job)
  }

  delete(id: string) {
    if (this.deps.db.query('DELETE FROM cron_jobs WHERE id = $id').run({ id }).changes === 0) throw notFound(id)
    this.unschedule(id)
    this.log.info('job deleted', { job: id })
  }

  toggle(id: string, enabled?: boolean): JobView {
    const job = this.get(id)
    const next = enabled ?? !job.enabled
    if (next && oneShotPassed(job.schedule, job.timezone)) throw invalid(`enabled: the one-shot time ${job.schedule} has passed; create a new job`)
    this.setEnabled(id, next)
    return this.get(id)
  }

  /** Runs a job now, in the background, after a run of it that is in progress; resolves to the run id. */
  trigger(id: string): string {
    const job = this.get(id)
    const run = this.newRun(job, 'manual')
    // When nothing of the job runs, the run starts here: a storage fault is the caller's 503, nothing stored.
    if (!this.runsByJob.has(job.id)) this.begin(run)
    void this.runNow(run)
    return run.id
  }

  runs(id: string, limit = 50): Run[] {
    this.get(id)
    const rows = this.deps.db
      .query('SELECT id, job_id, trigger, status, started_at, finished_at, reply, error FROM cron_runs WHERE job_id = $id ORDER BY seq DESC LIMIT $limit')
      .all({ id, limit }) as Array<Run & { reply: string | null; error: string | null }>
    return rows.map(({ reply, error, ...run }) => ({ ...run, ...(reply !== null ? { reply } : {}), ...(error !== null ? { error } : {}) }))
  }

  private newRun(job: Job, trigger: Run['trigger']): RunState {
    return { id: `run_${randomUUID().replaceAll('-', '').slice(0, 16)}`, job, trigger, startedAt: new Date().toISOString(), begun: false, faults: 0, outcomeWrites: 0 }
  }

  private view(job: Job): JobView {
    const last = this.deps.db.query('SELECT started_at, status FROM cron_runs WHERE job_id = $id ORDER BY seq DESC LIMIT 1').get({ id: job.id }) as { started_at: string; status: JobView['last_status'] } | null
    const due = this.due.get(job.id)
    const next = job.enabled ? (due !== undefined ? new Date(due) : this.nextAfter(job, new Date())) : null
    return { ...job, next_run: next?.toISOString() ?? null, last_run: last?.started_at ?? null, last_status: last?.status ?? null }
  }

  private setEnabled(id: string, enabled: boolean) {
    this.deps.db.query('UPDATE cron_jobs SET enabled = $enabled, updated_at = $now WHERE id = $id').run({ id, enabled: enabled ? 1 : 0, now: new Date().toISOString() })
    if (enabled) this.schedule(this.get(id))
    else this.unschedule(id)
  }

  /** The next time the job's schedule fires after `after`, from croner (which parsed and validated it). */
  private nextAfter(job: Pick<Job, 'schedule' | 'timezone'>, after: Date): Date | null {
    const key = `${job.schedule}\u0000${job.timezone}`
    let pattern = this.patterns.get(key)
    if (!pattern) {
      if (this.patterns.size > 5000) this.patterns.clear()
      pattern = new Cron(job.schedule, { timezone: job.timezone, paused: true })
      this.patterns.set(key, pattern)
    }
    return pattern.nextRun(after) ?? null
  }

  private schedule(job: Job, from = new Date()) {
    if (this.stopping) return
    const next = this.nextAfter(job, from)
    if (next) this.due.set(job.id, next.getTime())
    else this.due.delete(job.id)
    this.arm()
  }

  private unschedule(id: string) {
    this.due.delete(id)
    this.arm()
  }

  /** One timer for the earliest due job (at most a minute ahead, so a changed clock is noticed). */
  /** Sets the timer for the earliest due job; `notBeforeMs` keeps a failing tick from spinning. */
  private arm(notBeforeMs = 0) {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.stopping || this.due.size === 0) return
    let earliest = Infinity
    for (const at of this.due.values()) if (at < earliest) earliest = at
    this.timer = setTimeout(() => this.tick(), Math.min(60_000, Math.max(notBeforeMs, earliest - Date.now())))
  }

  /** Runs every job that is due, works out when each is due next, and sets the timer again. */
  private tick() {
    this.timer = null
    let failed = false
    try {
      this.runDue()
    } catch (error) {
      // A timer callback must not throw (it would end the process), and the scheduler must keep going: a job
      // whose row cannot be read right now (a storage fault) is tried again a second later.
      failed = true
      this.log.error('cron tick failed; trying again in 1 s', { err: error })
    } finally {
      this.arm(failed ? 1000 : 0)
    }
  }

  private runDue() {
    const now = Date.now()
    for (const [id, at] of [...this.due]) {
      if (at > now) continue
      const row = this.deps.db.query('SELECT * FROM cron_jobs WHERE id = $id AND enabled = 1').get({ id }) as JobRow | null
      if (!row) {
        this.due.delete(id)
        continue
      }
      const job = fromRow(row)
      // The next run counts from the time this one was due, so a slow tick does not skip or repeat one.
      const next = isOneShot(job.schedule) ? null : this.nextAfter(job, new Date(Math.max(at, now - 1000)))
      if (next) this.due.set(id, next.getTime())
      else this.due.delete(id)
      if (this.running.has(id) || this.waitsForRetry(id)) {
        this.log.info('tick skipped: the previous run of this job is still running', { job: id })
        continue
      }
      void this.runNow(this.newRun(job, 'schedule'))
    }
  }

  private runNow(run: RunState): Promise<void> {
    return this.runsByJob.run(run.job.id, () => this.execute(run))
  }

  private async execute(run: RunState) {
    if (this.stopping) return
    const { job } = run
    this.running.add(job.id)
    this.active++
    try {
      if (!run.begun) this.begin(run)
      run.outcome ??= await this.perform(run)
      this.record(run)
    } catch (error) {
      const code = storageFaultOf(error)
      if (code) this.retryLater(run, code, error as Error)
      else this.log.error('job failed unexpectedly', { job: job.id, run: run.id, err: error })
    } finally {
      this.running.delete(job.id)
      this.active--
    }
  }

  /** Stores the run as running; a one-shot is disabled as it starts: even a crash during the run cannot make it run twice. */
  private begin(run: RunState) {
    const db = this.deps.db
    const oneShot = isOneShot(run.job.schedule)
    run.startedAt = new Date().toISOString()
    db.transaction(() => {
      db.query(`INSERT INTO cron_runs (id, job_id, trigger, status, started_at) VALUES ($id, $job_id, $trigger, 'running', $now)`).run({ id: run.id, job_id: run.job.id, trigger: run.trigger, now: run.startedAt })
      if (oneShot) db.query('UPDATE cron_jobs SET enabled = 0, updated_at = $now WHERE id = $id').run({ id: run.job.id, now: new Date().toISOString() })
    }).immediate()
    run.begun = true
    if (oneShot) this.unschedule(run.job.id)
  }

  /** The job's work: an agent turn (and its delivery) or a direct delivery. A storage fault is thrown, to be retried. */
  private async perform(run: RunState): Promise<NonNullable<RunState['outcome']>> {
    const { job } = run
    try {
      if (job.mode === 'agent') {
        const reply = (await this.deps.agent.turn({ session: job.session ?? `cron:${job.id}`, message: job.message })).reply
        if (job.channel && job.chat_id) await this.channelOf(job).send(job.chat_id, reply)
        return { status: 'ok', reply }
      }
      await this.channelOf(job).send(job.chat_id!, job.message)
      return { status: 'ok', reply: job.message }
    } catch (error) {
      if (storageFaultOf(error)) throw error
      const message = this.deps.redact ? this.deps.redact((error as Error).message) : (error as Error).message
      return { status: 'failed', error: message }
    }
  }

  /** Stores the outcome (the row too, if the run never got to store it). */
  private record(run: RunState) {
    const outcome = run.outcome!
    const db = this.deps.db
    const oneShot = isOneShot(run.job.schedule) && !run.begun
    db.transaction(() => {
      // Nothing is recorded for a job deleted in the meantime (its runs went with it).
      db.query(
        `INSERT INTO cron_runs (id, job_id, trigger, status, started_at, finished_at, reply, error)
         SELECT $id, $job_id, $trigger, $status, $started_at, $now, $reply, $error WHERE EXISTS (SELECT 1 FROM cron_jobs WHERE id = $job_id)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, reply = excluded.reply, error = excluded.error`,
      ).run({
        id: run.id,
        job_id: run.job.id,
        trigger: run.trigger,
        status: outcome.status,
        started_at: run.startedAt,
        now: new Date().toISOString(),
        reply: outcome.status === 'ok' ? outcome.reply : null,
        error: outcome.status === 'failed' ? outcome.error : null,
      })
      // A one-shot that never got to start is done as well: it failed once and does not come back.
      if (oneShot) db.query('UPDATE cron_jobs SET enabled = 0, updated_at = $now WHERE id = $id').run({ id: run.job.id, now: new Date().toISOString() })
    }).immediate()
    if (oneShot) this.unschedule(run.job.id)
    if (outcome.status === 'ok') this.log.info('job ran', { job: run.job.id, run: run.id, trigger: run.trigger })
    else this.log.error('job failed', { job: run.job.id, run: run.id, trigger: run.trigger, reason: outcome.error })
  }

  /** After a storage fault: try the run again later — after the last attempt it is recorded failed; an outcome is written again until it is stored. */
  private retryLater(run: RunState, code: string, error: Error) {
    let delay: number
    if (run.outcome) {
      run.outcomeWrites++
      delay = retryDelay(run.outcomeWrites, this.policy)
      this.log.warn('the outcome of a run could not be stored; writing it again later', { job: run.job.id, run: run.id, code, retryInMs: delay })
    } else {
      run.faults++
      if (run.faults >= this.policy.attempts) {
        run.outcome = { status: 'failed', error: `the run could not be completed: the database could not be written in ${run.faults} attempts (${code}: ${error.message})` }
        this.log.error('giving up on a run: the database could not be written', { job: run.job.id, run: run.id, code, attempts: run.faults })
        try {
          this.record(run)
          return
        } catch (failure) {
          if (!storageFaultOf(failure)) {
            this.log.error('could not record a failed run', { job: run.job.id, run: run.id, err: failure })
            return
          }
          run.outcomeWrites++
          delay = retryDelay(run.outcomeWrites, this.policy)
        }
      } else {
        delay = retryDelay(run.faults, this.policy)
        this.log.warn('storage fault during a run; it will be tried again', { job: run.job.id, run: run.id, code, attempt: run.faults, of: this.policy.attempts, retryInMs: delay, reason: error.message })
      }
    }
    this.pendingRuns.set(run.id, run)
    this.retries.after(run.id, delay)
  }

  private resume(runId: string) {
    const run = this.pendingRuns.get(runId)
    this.pendingRuns.delete(runId)
    if (run) void this.runNow(run)
  }

  private waitsForRetry(jobId: string): boolean {
    for (const run of this.pendingRuns.values()) if (run.job.id === jobId) return true
    return false
  }

  private channelOf(job: Job): Channel {
    const channel = job.channel ? this.deps.channel(job.channel) : undefined
    if (!channel) throw new Error(`channel "${job.channel}" is not configured or not enabled`)
    return channel
  }
}
