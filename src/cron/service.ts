import type { Database } from 'bun:sqlite'
import { randomUUID } from 'node:crypto'
import { Cron } from 'croner'
import { z } from 'zod'
import type { Agent } from '../agent/agent'
import { SessionKey } from '../agent/sessions'
import type { Channel } from '../channels/channel'
import { AppError } from '../errors'
import { waitUntil } from '../lifecycle/timeout'
import type { Logger } from '../logging/logger'
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
 */
export class CronService {
  /** when each scheduled job is due next (epoch ms); one timer serves them all */
  private readonly due = new Map<string, number>()
  private timer: ReturnType<typeof setTimeout> | null = null
  /** parsed schedules, shared by jobs with the same expression and time zone */
  private readonly patterns = new Map<string, Cron>()
  private readonly chains = new Map<string, Promise<void>>()
  private readonly running = new Set<string>()
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
    },
  ) {
    this.log = deps.log.withTag('cron')
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
        void this.runNow(job, 'catch-up', this.newRunId())
      } else this.schedule(job)
    }
    this.arm()
    this.log.info('cron started', { jobs: this.due.size })
  }

  /** Stops every timer; runs in progress finish (the graceful stop waits with `idle`). */
  stop() {
    this.stopping = true
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
    const runId = this.newRunId()
    void this.runNow(job, 'manual', runId)
    return runId
  }

  runs(id: string, limit = 50): Run[] {
    this.get(id)
    const rows = this.deps.db
      .query('SELECT id, job_id, trigger, status, started_at, finished_at, reply, error FROM cron_runs WHERE job_id = $id ORDER BY seq DESC LIMIT $limit')
      .all({ id, limit }) as Array<Run & { reply: string | null; error: string | null }>
    return rows.map(({ reply, error, ...run }) => ({ ...run, ...(reply !== null ? { reply } : {}), ...(error !== null ? { error } : {}) }))
  }

  private newRunId() {
    return `run_${randomUUID().replaceAll('-', '').slice(0, 16)}`
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
  private arm() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.stopping || this.due.size === 0) return
    let earliest = Infinity
    for (const at of this.due.values()) if (at < earliest) earliest = at
    this.timer = setTimeout(() => this.tick(), Math.min(60_000, Math.max(0, earliest - Date.now())))
  }

  /** Runs every job that is due, works out when each is due next, and sets the timer again. */
  private tick() {
    this.timer = null
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
      if (this.running.has(id)) {
        this.log.info('tick skipped: the previous run of this job is still running', { job: id })
        continue
      }
      void this.runNow(job, 'schedule', this.newRunId())
    }
    this.arm()
  }

  private runNow(job: Job, trigger: Run['trigger'], runId: string): Promise<void> {
    const previous = this.chains.get(job.id) ?? Promise.resolve()
    const next = previous.then(() => this.execute(job, trigger, runId))
    this.chains.set(job.id, next)
    next.then(() => {
      if (this.chains.get(job.id) === next) this.chains.delete(job.id)
    })
    return next
  }

  private async execute(job: Job, trigger: Run['trigger'], runId: string) {
    if (this.stopping) return
    this.running.add(job.id)
    this.active++
    const db = this.deps.db
    try {
      db.transaction(() => {
        db.query(`INSERT INTO cron_runs (id, job_id, trigger, status, started_at) VALUES ($id, $job_id, $trigger, 'running', $now)`).run({ id: runId, job_id: job.id, trigger, now: new Date().toISOString() })
        // A one-shot is disabled as it starts: even a crash during the run cannot make it run twice.
        if (isOneShot(job.schedule)) db.query('UPDATE cron_jobs SET enabled = 0, updated_at = $now WHERE id = $id').run({ id: job.id, now: new Date().toISOString() })
      }).immediate()
      if (isOneShot(job.schedule)) this.unschedule(job.id)
      let reply: string
      if (job.mode === 'agent') {
        reply = (await this.deps.agent.turn({ session: job.session ?? `cron:${job.id}`, message: job.message })).reply
        if (job.channel && job.chat_id) await this.channelOf(job).send(job.chat_id, reply)
      } else {
        await this.channelOf(job).send(job.chat_id!, job.message)
        reply = job.message
      }
      db.query(`UPDATE cron_runs SET status = 'ok', reply = $reply, finished_at = $now WHERE id = $id`).run({ id: runId, reply, now: new Date().toISOString() })
      this.log.info('job ran', { job: job.id, run: runId, trigger })
    } catch (error) {
      const message = this.deps.redact ? this.deps.redact((error as Error).message) : (error as Error).message
      try {
        db.query(`UPDATE cron_runs SET status = 'failed', error = $error, finished_at = $now WHERE id = $id`).run({ id: runId, error: message, now: new Date().toISOString() })
      } catch {}
      this.log.error('job failed', { job: job.id, run: runId, trigger, reason: message })
    } finally {
      this.running.delete(job.id)
      this.active--
    }
  }

  private channelOf(job: Job): Channel {
    const channel = job.channel ? this.deps.channel(job.channel) : undefined
    if (!channel) throw new Error(`channel "${job.channel}" is not configured or not enabled`)
    return channel
  }
}
