import type { Database } from 'bun:sqlite'
import { z } from 'zod'
import { DataError } from '../errors'
import { describeIssues } from '../validation'

/** A stored job (SPEC §10), as the API shows it. */
export const Job = z.object({
  id: z.string(),
  name: z.string(),
  schedule: z.string(),
  timezone: z.string(),
  enabled: z.boolean(),
  mode: z.enum(['agent', 'direct']),
  message: z.string(),
  channel: z.string().nullable(),
  chat_id: z.string().nullable(),
  session: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
})
export type Job = z.infer<typeof Job>

export const RunStatus = z.enum(['running', 'ok', 'failed'])
export type RunStatus = z.infer<typeof RunStatus>

export const Run = z.object({
  id: z.string(),
  job_id: z.string(),
  trigger: z.enum(['schedule', 'manual', 'catch-up']),
  status: RunStatus,
  started_at: z.string(),
  finished_at: z.string().nullable(),
  reply: z.string().optional(),
  error: z.string().optional(),
})
export type Run = z.infer<typeof Run>

/** A `cron_jobs` row: SQLite keeps the boolean as 0 or 1. */
const JobRow = Job.extend({ enabled: z.union([z.literal(0), z.literal(1)]).transform((flag) => flag === 1) })
/** A `cron_runs` row: SQL NULL where the API leaves a field out. */
const RunRow = Run.extend({ reply: z.string().nullable(), error: z.string().nullable() }).transform(({ reply, error, ...run }): Run => ({
  ...run,
  ...(reply !== null ? { reply } : {}),
  ...(error !== null ? { error } : {}),
}))
const LastRun = z.object({ started_at: z.string(), status: RunStatus })
const Counts = z.object({ jobs: z.int(), enabled: z.int() })

/**
 * What comes back from the database is parsed: a row that does not fit (edited by hand, written by a newer
 * version, damaged) is a DataError naming the table, the row and the field — here, not a crash somewhere later.
 */
function parseRow<S extends z.ZodType>(schema: S, table: string, row: unknown): z.output<S> {
  const parsed = schema.safeParse(row)
  if (parsed.success) return parsed.data
  const id = row !== null && typeof row === 'object' && 'id' in row ? ` ${JSON.stringify((row as { id: unknown }).id)}` : ''
  const problems = parsed.error.issues.flatMap((issue) => describeIssues([issue], issue.path.length ? [] : ['row'], { input: row })).join('; ')
  throw new DataError(`the database holds a damaged ${table} row${id} (${problems})`)
}

/** A run as it starts. */
export type RunStart = { id: string; job_id: string; trigger: Run['trigger']; started_at: string }
/** The outcome of a run, as it is stored. */
export type RunRecord = RunStart & ({ status: 'ok'; reply: string } | { status: 'failed'; error: string })

/** Jobs and their runs in SQLite (tables `cron_jobs`, `cron_runs`). Knows SQL, not schedules. */
export class JobStore {
  constructor(private readonly db: Database) {}

  private job(row: unknown): Job {
    return parseRow(JobRow, 'cron_jobs', row)
  }

  /** Marks runs that a stop or crash interrupted as failed; returns how many there were. */
  settleInterrupted(now: string): number {
    return this.db.query(`UPDATE cron_runs SET status = 'failed', error = 'interrupted: the gateway stopped during this run', finished_at = $now WHERE status = 'running'`).run({ now }).changes
  }

  all(): Job[] {
    return this.db.query('SELECT * FROM cron_jobs ORDER BY created_at, id').all().map((row) => this.job(row))
  }

  enabled(): Job[] {
    return this.db.query('SELECT * FROM cron_jobs WHERE enabled = 1 ORDER BY created_at').all().map((row) => this.job(row))
  }

  get(id: string): Job | null {
    const row = this.db.query('SELECT * FROM cron_jobs WHERE id = $id').get({ id })
    return row === null ? null : this.job(row)
  }

  /** The job if it exists and is enabled. */
  getEnabled(id: string): Job | null {
    const row = this.db.query('SELECT * FROM cron_jobs WHERE id = $id AND enabled = 1').get({ id })
    return row === null ? null : this.job(row)
  }

  count(): { jobs: number; enabled: number } {
    return Counts.parse(this.db.query('SELECT COUNT(*) AS jobs, COALESCE(SUM(enabled), 0) AS enabled FROM cron_jobs').get())
  }

  insert(job: Job) {
    this.db
      .query(
        `INSERT INTO cron_jobs (id, name, schedule, timezone, enabled, mode, message, channel, chat_id, session, created_at, updated_at)
         VALUES ($id, $name, $schedule, $timezone, $enabled, $mode, $message, $channel, $chat_id, $session, $created_at, $updated_at)`,
      )
      .run({ ...job, enabled: job.enabled ? 1 : 0 })
  }

  /** Deletes the job and (by cascade) its runs; false when there was none. */
  delete(id: string): boolean {
    return this.db.query('DELETE FROM cron_jobs WHERE id = $id').run({ id }).changes > 0
  }

  setEnabled(id: string, enabled: boolean, now: string) {
    this.db.query('UPDATE cron_jobs SET enabled = $enabled, updated_at = $now WHERE id = $id').run({ id, enabled: enabled ? 1 : 0, now })
  }

  lastRun(jobId: string): z.infer<typeof LastRun> | null {
    const row = this.db.query('SELECT started_at, status FROM cron_runs WHERE job_id = $id ORDER BY seq DESC LIMIT 1').get({ id: jobId })
    return row === null ? null : parseRow(LastRun, 'cron_runs', row)
  }

  /** The job's runs, newest first. */
  runs(jobId: string, limit: number): Run[] {
    return this.db
      .query('SELECT id, job_id, trigger, status, started_at, finished_at, reply, error FROM cron_runs WHERE job_id = $id ORDER BY seq DESC LIMIT $limit')
      .all({ id: jobId, limit })
      .map((row) => parseRow(RunRow, 'cron_runs', row))
  }

  /** Stores a run as running; `disable` (a one-shot) turns its job off in the same transaction. */
  begin(run: RunStart, { disable, now }: { disable: boolean; now: string }) {
    this.db
      .transaction(() => {
        this.db.query(`INSERT INTO cron_runs (id, job_id, trigger, status, started_at) VALUES ($id, $job_id, $trigger, 'running', $started_at)`).run(run)
        if (disable) this.setEnabled(run.job_id, false, now)
      })
      .immediate()
  }

  /**
   * Stores a run's outcome (the row too, if it was never begun). Nothing is recorded for a job deleted in the
   * meantime (its runs went with it). `disable` turns the job off in the same transaction.
   */
  finish(run: RunRecord, { disable, now }: { disable: boolean; now: string }) {
    this.db
      .transaction(() => {
        this.db
          .query(
            `INSERT INTO cron_runs (id, job_id, trigger, status, started_at, finished_at, reply, error)
             SELECT $id, $job_id, $trigger, $status, $started_at, $now, $reply, $error WHERE EXISTS (SELECT 1 FROM cron_jobs WHERE id = $job_id)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, reply = excluded.reply, error = excluded.error`,
          )
          .run({
            id: run.id,
            job_id: run.job_id,
            trigger: run.trigger,
            status: run.status,
            started_at: run.started_at,
            now,
            reply: run.status === 'ok' ? run.reply : null,
            error: run.status === 'failed' ? run.error : null,
          })
        if (disable) this.setEnabled(run.job_id, false, now)
      })
      .immediate()
  }
}
