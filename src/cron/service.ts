import type { CronJobs, JobInput, JobView } from './jobs'
import type { CronRunner } from './runner'
import type { Run } from './store'
import { AppError } from '../errors'
import { scheduleProblem } from './schedule'

export { CronJobs, JobInput, type JobView } from './jobs'
export { CronRunner } from './runner'
export type { Job, Run } from './store'

export interface CronServiceDeps {
  /** the jobs and their schedule (built before the agent: its cron tool uses them) */
  jobs: CronJobs
  /** what runs them (built after the agent) */
  runner: CronRunner
}

/**
 * Cron jobs (SPEC §10), as the HTTP routes and the gateway's start and stop see them: the jobs and their schedule
 * (CronJobs) and what runs them (CronRunner), connected by `start`. A job never overlaps itself; one-shots run
 * once (also when their time passed while the gateway was down) and then disable themselves.
 */
export class CronService {
  private readonly jobs: CronJobs
  private readonly runner: CronRunner

  constructor({ jobs, runner }: CronServiceDeps) {
    this.jobs = jobs
    this.runner = runner
  }

  /** Schedules every enabled job, run by the runner; settles runs a crash interrupted; runs one-shots whose time has passed. */
  start() {
    this.jobs.start(this.runner)
  }

  /** Stops every timer; runs in progress finish (the graceful stop waits with `idle`); runs waiting for a retry are dropped. */
  stop() {
    this.runner.stop()
    this.jobs.stop()
  }

  idle(timeoutMs: number): Promise<boolean> {
    return this.runner.idle(timeoutMs)
  }

  /** Runs a job now, in the background, after a run of it that is in progress; resolves to the run id. */
  trigger(id: string): string {
    return this.runner.start(this.jobs.job(id), 'manual')
  }

  count(): { jobs: number; enabled: number } {
    return this.jobs.count()
  }

  /** The earliest next run over all scheduled jobs. */
  nextRun(): string | null {
    return this.jobs.nextRun()
  }

  list(): JobView[] {
    return this.jobs.list()
  }

  get(id: string): JobView {
    return this.jobs.get(id)
  }

  create(input: JobInput): JobView {
    return this.jobs.create(input)
  }

  delete(id: string) {
    this.jobs.delete(id)
  }

  toggle(id: string, enabled?: boolean): JobView {
    return this.jobs.toggle(id, enabled)
  }

  /** A schedule in words and its next runs, as a job created with it would run (the Control UI's preview). */
  async preview(schedule: string, timezone?: string): Promise<{ description: string; next_runs: string[]; timezone: string }> {
    const zone = timezone ?? this.jobs.defaultTimezone
    const problem = scheduleProblem(schedule, zone)
    if (problem) throw new AppError('INVALID_REQUEST', `query.${problem.startsWith('unknown time zone') ? 'timezone' : 'schedule'}: ${problem}`)
    // Loaded on first use: the words come from a library the gateway needs for nothing else.
    const { describeSchedule } = await import('./describe')
    return { ...describeSchedule(schedule, zone), timezone: zone }
  }

  runs(id: string, limit = 50): Run[] {
    return this.jobs.runs(id, limit)
  }
}
