import { randomUUID } from 'node:crypto'
import type { Agent } from '../agent/agent'
import type { Sender } from '../channels/channel'
import type { Logger } from '../logging/logger'
import type { CronObserver } from '../metrics/recorder'
import { RETRY_POLICY, retryDelay, RetryTimer, storageFaultOf, systemClock, type Clock, type RetryPolicy } from '../storage/faults'
import { serialByKey } from '../util/serial'
import { waitUntil } from '../util/timeout'
import { isOneShot } from './schedule'
import type { CronJobs, JobRunner } from './jobs'
import type { Job, Run } from './store'

export interface CronRunnerDeps {
  /** where runs are recorded (a one-shot that starts also leaves the schedule there) */
  jobs: Pick<CronJobs, 'beginRun' | 'finishRun'>
  agent: Pick<Agent, 'turn'>
  /** the outbound half of a channel by name, for deliveries */
  sender: (name: string) => Sender | undefined
  log: Logger
  /** what "now" is and how to wait before a retry (default: the system clock) */
  clock?: Clock
  /** how often and how soon a run that hit a storage fault is tried again (default RETRY_POLICY) */
  retry?: RetryPolicy
  /** strips configured secrets from error texts before they are stored */
  redact?: (text: string) => string
  /** counts runs by outcome and how late scheduled runs start (GET /metrics) */
  metrics?: CronObserver
}

type Outcome = { status: 'ok'; reply: string } | { status: 'failed'; error: string }

/**
 * A run on its way. What it has done survives a storage fault, so that a retry neither runs the work again
 * once it produced an outcome (a delivery is never repeated) nor loses that outcome.
 */
interface RunState {
  id: string
  job: Job
  trigger: Run['trigger']
  /** when a scheduled run was due (epoch ms) */
  dueAt?: number
  /** when it began (or, if it never could, when it was due) */
  startedAt: string
  /** its row ("running") is stored */
  begun: boolean
  /** storage faults before an outcome */
  faults: number
  outcome?: Outcome
  /** failed attempts to store the outcome */
  outcomeWrites: number
}

/**
 * Runs jobs: an agent turn (and its delivery) or a direct delivery — the same turn and delivery code as inbound
 * messages — and records each run. A job never overlaps itself: its runs go one at a time, in order.
 *
 * A run that hits a transient storage fault (full disk, a held lock) before it has an outcome is tried again
 * after 1 s, 2 s, 4 s, … (the retry policy) and recorded failed after the last attempt; an outcome that could
 * not be stored is written again later until it is.
 */
export class CronRunner implements JobRunner {
  /** each job's runs, one at a time in the order they were asked for */
  private readonly runsByJob = serialByKey()
  private readonly running = new Set<string>()
  /** runs waiting for a retry after a storage fault, by run id */
  private readonly pendingRuns = new Map<string, RunState>()
  private readonly retries: RetryTimer<string>
  private active = 0
  private stopped = false
  private readonly clock: Clock
  private readonly policy: RetryPolicy
  private readonly log: Logger

  constructor(private readonly deps: CronRunnerDeps) {
    this.clock = deps.clock ?? systemClock
    this.policy = deps.retry ?? RETRY_POLICY
    this.log = deps.log.withTag('cron')
    this.retries = new RetryTimer((runId) => this.resume(runId), this.clock)
  }

  private stamp(): string {
    return new Date(this.clock.now()).toISOString()
  }

  /** Whether a run of the job is in progress, about to start, or waits for a retry (a scheduled tick then skips). */
  busy(jobId: string): boolean {
    // runsByJob also covers a run resumed after a retry that has not started yet, so a tick cannot slip in between.
    if (this.running.has(jobId) || this.runsByJob.has(jobId)) return true
    for (const run of this.pendingRuns.values()) if (run.job.id === jobId) return true
    return false
  }

  /**
   * Runs the job in the background, after a run of it that is in progress; returns the run id. A manual run
   * of a job that is not running starts here: a storage fault is then the caller's (nothing is stored).
   */
  start(job: Job, trigger: Run['trigger'], dueAt?: number): string {
    const run: RunState = { id: `run_${randomUUID().replaceAll('-', '').slice(0, 16)}`, job, trigger, ...(dueAt === undefined ? {} : { dueAt }), startedAt: this.stamp(), begun: false, faults: 0, outcomeWrites: 0 }
    if (trigger === 'manual' && !this.runsByJob.has(job.id)) this.begin(run)
    void this.enqueue(run)
    return run.id
  }

  /** Resolves true once no run is in progress, or false after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    return waitUntil(() => this.active === 0, timeoutMs)
  }

  /**
   * Runs in progress finish. Runs waiting for a retry are not waited for: their rows stay "running" and the
   * next start records them as interrupted.
   */
  stop() {
    this.stopped = true
    this.retries.stop()
    this.pendingRuns.clear()
  }

  private enqueue(run: RunState): Promise<void> {
    return this.runsByJob.run(run.job.id, () => this.execute(run))
  }

  private async execute(run: RunState) {
    if (this.stopped) return
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
    const oneShot = isOneShot(run.job.schedule)
    run.startedAt = this.stamp()
    this.deps.jobs.beginRun({ id: run.id, job_id: run.job.id, trigger: run.trigger, started_at: run.startedAt }, { disable: oneShot, now: run.startedAt })
    run.begun = true
    if (run.dueAt !== undefined) this.deps.metrics?.cronFired((Date.parse(run.startedAt) - run.dueAt) / 1000)
  }

  /** The job's work: an agent turn (and its delivery) or a direct delivery. A storage fault is thrown, to be retried. */
  private async perform(run: RunState): Promise<Outcome> {
    const { job } = run
    try {
      if (job.mode === 'agent') {
        const reply = (await this.deps.agent.turn({ session: job.session ?? `cron:${job.id}`, message: job.message })).reply
        if (job.channel && job.chat_id) await this.senderOf(job).send(job.chat_id, reply)
        return { status: 'ok', reply }
      }
      await this.senderOf(job).send(job.chat_id!, job.message)
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
    // A one-shot that never got to start is done as well: it failed once and does not come back.
    const oneShot = isOneShot(run.job.schedule) && !run.begun
    this.deps.jobs.finishRun({ id: run.id, job_id: run.job.id, trigger: run.trigger, started_at: run.startedAt, ...outcome }, { disable: oneShot, now: this.stamp() })
    this.deps.metrics?.cronRun(run.trigger, outcome.status)
    if (outcome.status === 'ok') this.log.info('job ran', { job: run.job.id, run: run.id, trigger: run.trigger })
    else this.log.error('job failed', { job: run.job.id, run: run.id, trigger: run.trigger, reason: outcome.error })
  }

  /** After a storage fault: try the run again later — after the last attempt it is recorded failed; an outcome is written again until it is stored. */
  private retryLater(run: RunState, code: string, error: Error) {
    const { log, policy } = this
    let delay: number
    if (run.outcome) {
      run.outcomeWrites++
      delay = retryDelay(run.outcomeWrites, policy)
      log.warn('the outcome of a run could not be stored; writing it again later', { job: run.job.id, run: run.id, code, retryInMs: delay })
    } else {
      run.faults++
      if (run.faults >= policy.attempts) {
        run.outcome = { status: 'failed', error: `the run could not be completed: the database could not be written in ${run.faults} attempts (${code}: ${error.message})` }
        log.error('giving up on a run: the database could not be written', { job: run.job.id, run: run.id, code, attempts: run.faults })
        try {
          this.record(run)
          return
        } catch (failure) {
          if (!storageFaultOf(failure)) {
            log.error('could not record a failed run', { job: run.job.id, run: run.id, err: failure })
            return
          }
          run.outcomeWrites++
          delay = retryDelay(run.outcomeWrites, policy)
        }
      } else {
        delay = retryDelay(run.faults, policy)
        log.warn('storage fault during a run; it will be tried again', { job: run.job.id, run: run.id, code, attempt: run.faults, of: policy.attempts, retryInMs: delay, reason: error.message })
      }
    }
    this.pendingRuns.set(run.id, run)
    this.retries.after(run.id, delay)
  }

  private resume(runId: string) {
    const run = this.pendingRuns.get(runId)
    this.pendingRuns.delete(runId)
    if (run) void this.enqueue(run)
  }

  private senderOf(job: Job): Sender {
    const sender = job.channel ? this.deps.sender(job.channel) : undefined
    if (!sender) throw new Error(`channel "${job.channel}" is not configured or not enabled`)
    return sender
  }
}
