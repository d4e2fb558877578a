import type { Database } from 'bun:sqlite'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { Agent } from '../agent/agent'
import { SessionKey } from '../agent/sessions'
import type { Channel } from '../channels/channel'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { RETRY_POLICY, systemClock, type Clock, type RetryPolicy } from '../storage/faults'
import { Runner } from './runner'
import { scheduleProblem } from './schedule'
import { Scheduler } from './scheduler'
import { JobStore, type Job, type Run } from './store'

export type { Job, Run } from './store'

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

export interface CronServiceDeps {
  db: Database
  agent: Pick<Agent, 'turn'>
  channel: (name: string) => Channel | undefined
  log: Logger
  defaultTimezone: string
  /** strips configured secrets from error texts before they are stored */
  redact?: (text: string) => string
  /** what "now" is and how to wait: for the schedule, the timestamps and retries after a storage fault (default: the system clock) */
  clock?: Clock
  /** how often and how soon a run that hit a storage fault is tried again (default RETRY_POLICY) */
  retry?: RetryPolicy
}

const notFound = (id: string) => new AppError('JOB_NOT_FOUND', `no cron job ${JSON.stringify(id)}`)
const invalid = (message: string) => new AppError('INVALID_REQUEST', message)

/**
 * Cron jobs (SPEC §10): jobs and runs live in the database (JobStore); enabled jobs are scheduled at start
 * (Scheduler); changes take effect at once; a job never overlaps itself — a tick that finds its previous run
 * still going, or waiting for a retry after a storage fault, is skipped; one-shots run once (also when their
 * time passed while the gateway was down) and then disable themselves. Runs use the agent and the channels
 * (Runner). This class checks requests and ties the three together.
 */
export class CronService {
  private readonly store: JobStore
  private readonly scheduler: Scheduler
  private readonly runner: Runner
  private readonly log: Logger

  constructor(private readonly deps: CronServiceDeps) {
    this.log = deps.log.withTag('cron')
    const clock = deps.clock ?? systemClock
    this.store = new JobStore(deps.db)
    this.scheduler = new Scheduler({ clock, log: this.log, load: (id) => this.store.getEnabled(id), fire: (job) => this.fire(job) })
    this.runner = new Runner({
      store: this.store,
      agent: deps.agent,
      channel: deps.channel,
      log: this.log,
      clock,
      retry: deps.retry ?? RETRY_POLICY,
      ...(deps.redact ? { redact: deps.redact } : {}),
      oneShotDone: (id) => this.scheduler.unschedule(id),
    })
  }

  private stamp(): string {
    return new Date(this.scheduler.now()).toISOString()
  }

  /** Schedules every enabled job; settles runs a crash interrupted; runs one-shots whose time has passed. */
  start() {
    const interrupted = this.store.settleInterrupted(this.stamp())
    if (interrupted) this.log.warn('runs interrupted by a stop were marked failed', { count: interrupted })
    for (const job of this.store.enabled()) {
      if (this.scheduler.oneShotPassed(job)) {
        this.log.info('one-shot job missed while the gateway was down: running it now', { job: job.id, schedule: job.schedule })
        this.runner.start(job, 'catch-up')
      } else this.scheduler.schedule(job)
    }
    this.scheduler.start()
    this.log.info('cron started', { jobs: this.scheduler.size })
  }

  /** Stops every timer; runs in progress finish (the graceful stop waits with `idle`); runs waiting for a retry are dropped. */
  stop() {
    this.runner.stop()
    this.scheduler.stop()
  }

  idle(timeoutMs: number): Promise<boolean> {
    return this.runner.idle(timeoutMs)
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
    if (input.channel && !this.deps.channel(input.channel)) throw invalid(`channel: no enabled channel ${JSON.stringify(input.channel)}`)
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
    if (!this.store.delete(id)) throw notFound(id)
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

  /** Runs a job now, in the background, after a run of it that is in progress; resolves to the run id. */
  trigger(id: string): string {
    return this.runner.start(this.job(id), 'manual')
  }

  runs(id: string, limit = 50): Run[] {
    this.job(id)
    return this.store.runs(id, limit)
  }

  private job(id: string): Job {
    const job = this.store.get(id)
    if (!job) throw notFound(id)
    return job
  }

  /** A scheduled tick: skipped while the job's previous run is still going (or waits for a retry). */
  private fire(job: Job) {
    if (this.runner.busy(job.id)) {
      this.log.info('tick skipped: the previous run of this job is still running', { job: job.id })
      return
    }
    this.runner.start(job, 'schedule')
  }

  private view(job: Job): JobView {
    const last = this.store.lastRun(job.id)
    const due = this.scheduler.dueAt(job.id)
    const next = job.enabled ? (due !== undefined ? new Date(due) : this.scheduler.nextAfter(job, new Date(this.scheduler.now()))) : null
    return { ...job, next_run: next?.toISOString() ?? null, last_run: last?.started_at ?? null, last_status: last?.status ?? null }
  }
}
