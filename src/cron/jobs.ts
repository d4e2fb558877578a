import type { Database } from 'bun:sqlite'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { SessionKey } from '../agent/sessions'
import type { Sender } from '../channels/channel'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { systemClock, type Clock } from '../storage/faults'
import { scheduleProblem } from './schedule'
import { Scheduler } from './scheduler'
import { JobStore, type Job, type Run, type RunRecord, type RunStart } from './store'

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

export interface JobView extends Job {
  next_run: string | null
  last_run: string | null
  last_status: 'running' | 'ok' | 'failed' | null
}

export interface CronJobsDeps {
  db: Database
  log: Logger
  defaultTimezone: string
  /** the outbound half of a channel by name: a job that delivers must name one that exists */
  sender: (name: string) => Sender | undefined
  /** what "now" is and how to wait: for the schedule and the timestamps (default: the system clock) */
  clock?: Clock
}

/** What runs the jobs (./runner.ts), handed over at `start`: the scheduler fires into it. */
export interface JobRunner {
  /** Runs the job in the background; returns the run id. `dueAt` (epoch ms): when a scheduled run was due. */
  start(job: Job, trigger: Run['trigger'], dueAt?: number): string
  /** Whether a run of the job is in progress or waits for a retry (a scheduled tick then skips). */
  busy(jobId: string): boolean
}

export const jobNotFound = (id: string) => new AppError('JOB_NOT_FOUND', `no cron job ${JSON.stringify(id)}`)
const invalid = (message: string) => new AppError('INVALID_REQUEST', message)

/**
 * The jobs (SPEC §10) and when they are due: the job store (JobStore) and the schedule (Scheduler). Checks
 * requests; changes take effect at once. Needs no agent, so it is built before the agent (whose cron tool lists,
 * creates and deletes jobs through it); what runs the jobs is built after the agent and handed over at `start`.
 */
export class CronJobs {
  private readonly store: JobStore
  private readonly scheduler: Scheduler
  private readonly log: Logger

  constructor(private readonly deps: CronJobsDeps) {
    this.log = deps.log.withTag('cron')
    this.store = new JobStore(deps.db)
    this.scheduler = new Scheduler({ clock: deps.clock ?? systemClock, log: this.log, load: (id) => this.store.getEnabled(id) })
  }

  /** The time zone of a job created without one. */
  get defaultTimezone(): string {
    return this.deps.defaultTimezone
  }

  /** A reloaded `cron.timezone`: the time zone of jobs created from now on (existing jobs keep their own). */
  setDefaultTimezone(timezone: string) {
    this.deps.defaultTimezone = timezone
  }

  private stamp(): string {
    return new Date(this.scheduler.now()).toISOString()
  }

  /**
   * Schedules every enabled job, with `runner` running them; settles runs a crash interrupted; runs one-shots
   * whose time has passed (also when it passed while the gateway was down). A job never overlaps itself: a
   * tick that finds its previous run still going, or waiting for a retry, is skipped.
   */
  start(runner: JobRunner) {
    const interrupted = this.store.settleInterrupted(this.stamp())
    if (interrupted) this.log.warn('runs interrupted by a stop were marked failed', { count: interrupted })
    for (const job of this.store.enabled()) {
      if (this.scheduler.oneShotPassed(job)) {
        this.log.info('one-shot job missed while the gateway was down: running it now', { job: job.id, schedule: job.schedule })
        runner.start(job, 'catch-up')
      } else this.scheduler.schedule(job)
    }
    this.scheduler.start((job, dueAt) => {
      if (runner.busy(job.id)) {
        this.log.info('tick skipped: the previous run of this job is still running', { job: job.id })
        return
      }
      runner.start(job, 'schedule', dueAt)
    })
    this.log.info('cron started', { jobs: this.scheduler.size })
  }

  /** Stops the timer for good. */
  stop() {
    this.scheduler.stop()
  }

  count(): { jobs: number; enabled: number } {
    return this.store.count()
  }

  /** The earliest next run over all scheduled jobs. */
  nextRun(): string | null {
    const next = this.scheduler.nextRun()
    return next === null ? null : new Date(next).toISOString()
  }

  list(): JobView[] {
    return this.store.all().map((job) => this.view(job))
  }

  get(id: string): JobView {
    return this.view(this.job(id))
  }

  create(input: JobInput): JobView {
    const timezone = input.timezone ?? this.deps.defaultTimezone
    const schedule = input.schedule.trim()
    const problem = scheduleProblem(schedule, timezone)
    if (problem) throw invalid(problem.startsWith('unknown time zone') ? `timezone: ${problem}` : `schedule: ${problem}`)
    if (this.scheduler.oneShotPassed({ schedule, timezone })) throw invalid(`schedule: ${schedule} is in the past`)
    const mode = input.mode ?? 'agent'
    const chatId = input.chat_id === undefined ? null : String(input.chat_id)
    if (mode === 'direct' && (!input.channel || chatId === null)) throw invalid('channel and chat_id: are required for mode "direct" (where the message is delivered)')
    if ((input.channel === undefined) !== (chatId === null)) throw invalid(input.channel ? 'chat_id: is required with channel' : 'channel: is required with chat_id')
    if (input.channel && !this.deps.sender(input.channel)) throw invalid(`channel: no enabled channel ${JSON.stringify(input.channel)}`)
    const now = this.stamp()
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
    this.store.insert(job)
    if (job.enabled) this.scheduler.schedule(job)
    this.log.info('job created', { job: job.id, schedule, timezone, mode })
    return this.view(job)
  }

  delete(id: string) {
    if (!this.store.delete(id)) throw jobNotFound(id)
    this.scheduler.unschedule(id)
    this.log.info('job deleted', { job: id })
  }

  toggle(id: string, enabled?: boolean): JobView {
    const job = this.job(id)
    const next = enabled ?? !job.enabled
    if (next && this.scheduler.oneShotPassed(job)) throw invalid(`enabled: the one-shot time ${job.schedule} has passed; create a new job`)
    this.store.setEnabled(id, next, this.stamp())
    if (next) this.scheduler.schedule(this.job(id))
    else this.scheduler.unschedule(id)
    return this.get(id)
  }

  runs(id: string, limit = 50): Run[] {
    this.job(id)
    return this.store.runs(id, limit)
  }

  /** The stored job; JOB_NOT_FOUND if there is none. */
  job(id: string): Job {
    const job = this.store.get(id)
    if (!job) throw jobNotFound(id)
    return job
  }

  /** Stores a run as running; `disable` (a one-shot that starts) turns its job off and takes it off the schedule. */
  beginRun(run: RunStart, { disable, now }: { disable: boolean; now: string }) {
    this.store.begin(run, { disable, now })
    if (disable) this.scheduler.unschedule(run.job_id)
  }

  /** Stores a run's outcome; `disable` (a one-shot that never got to start) turns its job off and takes it off the schedule. */
  finishRun(run: RunRecord, { disable, now }: { disable: boolean; now: string }) {
    this.store.finish(run, { disable, now })
    if (disable) this.scheduler.unschedule(run.job_id)
  }

  private view(job: Job): JobView {
    const last = this.store.lastRun(job.id)
    const due = this.scheduler.dueAt(job.id)
    const next = job.enabled ? (due !== undefined ? new Date(due) : this.scheduler.nextAfter(job, new Date(this.scheduler.now()))) : null
    return { ...job, next_run: next?.toISOString() ?? null, last_run: last?.started_at ?? null, last_status: last?.status ?? null }
  }
}
