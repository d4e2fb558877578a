import { Cron } from 'croner'
import type { Logger } from '../logging/logger'
import type { Clock } from '../storage/faults'
import { isOneShot } from './schedule'
import type { Job } from './store'

type Timing = Pick<Job, 'schedule' | 'timezone'>

export interface SchedulerDeps {
  /** what "now" is and how to wait (the system clock in the gateway, a fake one in tests) */
  clock: Clock
  log: Logger
  /** The job as it is now if it is still enabled, else null. May throw (a storage fault): the tick is tried again. */
  load: (id: string) => Job | null
}

/** The job's time has come (`dueAt`, epoch ms; its next time is already worked out). Should not throw. */
export type Fire = (job: Job, dueAt: number) => void

/** The longest the timer waits, so that a clock that was changed (or a laptop that slept) is noticed. */
const MAX_WAIT_MS = 60_000
/** After a tick that failed (a job could not be read), the next is tried this much later, not at once. */
const FAILED_TICK_PAUSE_MS = 1000

/**
 * Which job is due when, over croner: one timer (on the injected clock) for the earliest due job. The timer
 * is set only between `start` (which is told what to do with a due job) and `stop`; jobs scheduled before
 * `start` are known (`nextRun`) but wait for it.
 */
export class Scheduler {
  /** when each scheduled job is due next (epoch ms) */
  private readonly due = new Map<string, number>()
  private timer: unknown = null
  /** parsed schedules, shared by jobs with the same expression and time zone */
  private readonly patterns = new Map<string, Cron>()
  private state: { phase: 'idle' } | { phase: 'started'; fire: Fire } | { phase: 'stopped' } = { phase: 'idle' }

  constructor(private readonly deps: SchedulerDeps) {}

  now(): number {
    return this.deps.clock.now()
  }

  start(fire: Fire) {
    if (this.state.phase !== 'idle') return
    this.state = { phase: 'started', fire }
    this.arm()
  }

  /** Stops the timer for good and forgets every schedule. */
  stop() {
    this.state = { phase: 'stopped' }
    this.arm()
    this.due.clear()
    for (const pattern of this.patterns.values()) pattern.stop()
    this.patterns.clear()
  }

  /** How many jobs are scheduled. */
  get size(): number {
    return this.due.size
  }

  /** True while the timer is set (for tests). */
  get armed(): boolean {
    return this.timer !== null
  }

  /** When the job is due next (epoch ms), if it is scheduled. */
  dueAt(id: string): number | undefined {
    return this.due.get(id)
  }

  /** The earliest next run over all scheduled jobs. */
  nextRun(): number | null {
    let next = Infinity
    for (const at of this.due.values()) if (at < next) next = at
    return Number.isFinite(next) ? next : null
  }

  /** The next time the schedule fires after `after`, from croner (which parsed and validated it). */
  nextAfter(job: Timing, after: Date): Date | null {
    const key = `${job.schedule}\u0000${job.timezone}`
    let pattern = this.patterns.get(key)
    if (!pattern) {
      if (this.patterns.size > 5000) this.patterns.clear()
      pattern = new Cron(job.schedule, { timezone: job.timezone, paused: true })
      this.patterns.set(key, pattern)
    }
    return pattern.nextRun(after) ?? null
  }

  /** A one-shot whose time has come. */
  oneShotPassed(job: Timing): boolean {
    if (!isOneShot(job.schedule)) return false
    const now = this.now()
    const next = this.nextAfter(job, new Date(now))
    return !next || next.getTime() <= now
  }

  /** Schedules the job from now on (again: its earlier time is replaced). */
  schedule(job: Job) {
    if (this.state.phase === 'stopped') return
    const next = this.nextAfter(job, new Date(this.now()))
    if (next) this.due.set(job.id, next.getTime())
    else this.due.delete(job.id)
    this.arm()
  }

  unschedule(id: string) {
    if (!this.due.delete(id)) return
    this.arm()
  }

  /** Sets the timer for the earliest due job; `notBeforeMs` keeps a failing tick from spinning. */
  private arm(notBeforeMs = 0) {
    const { clock } = this.deps
    if (this.timer !== null) clock.clearTimeout(this.timer)
    this.timer = null
    if (this.state.phase !== 'started' || this.due.size === 0) return
    const earliest = this.nextRun()!
    this.timer = clock.setTimeout(() => this.tick(), Math.min(MAX_WAIT_MS, Math.max(notBeforeMs, earliest - clock.now())))
  }

  /** Fires every job that is due, works out when each is due next, and sets the timer again. */
  private tick() {
    this.timer = null
    let failed = false
    try {
      this.fireDue()
    } catch (error) {
      // A timer callback must not throw (it would end the process), and the scheduler must keep going: a job
      // whose row cannot be read right now (a storage fault) is tried again a second later.
      failed = true
      this.deps.log.error('cron tick failed; trying again in 1 s', { err: error })
    } finally {
      this.arm(failed ? FAILED_TICK_PAUSE_MS : 0)
    }
  }

  private fireDue() {
    if (this.state.phase !== 'started') return
    const { fire } = this.state
    const now = this.now()
    for (const [id, at] of [...this.due]) {
      if (at > now) continue
      const job = this.deps.load(id)
      if (!job) {
        this.due.delete(id)
        continue
      }
      // The next run counts from the time this one was due, so a slow tick does not skip or repeat one.
      const next = isOneShot(job.schedule) ? null : this.nextAfter(job, new Date(Math.max(at, now - 1000)))
      if (next) this.due.set(id, next.getTime())
      else this.due.delete(id)
      fire(job, at)
    }
  }
}
