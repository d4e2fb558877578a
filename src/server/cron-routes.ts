import { Elysia } from 'elysia'
import { z } from 'zod'
import { JobInput, type CronService } from '../cron/service'

export const TriggerRequest = z.strictObject({ job_id: z.string().min(1, 'must be a non-empty string') })
export const ToggleRequest = z.strictObject({ enabled: z.boolean().optional() })
export const RunsQuery = z.object({
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.int().min(1, 'must be at least 1').max(500, 'must be at most 500'))
    .optional(),
})

/** The cron routes of SPEC §6. */
export function cronRoutes(cron: CronService) {
  return new Elysia({ name: 'cron', prefix: '/api/cron' })
    .get('/', function listJobs() {
      return { status: 'ok', jobs: cron.list() }
    })
    .post(
      '/create',
      function createJob({ body, set }) {
        const job = cron.create(body)
        set.status = 201
        return { status: 'ok', job }
      },
      { body: JobInput },
    )
    .post(
      '/trigger',
      function triggerJob({ body }) {
        const runId = cron.trigger(body.job_id)
        return { status: 'ok', message: 'Task triggered', run_id: runId }
      },
      { body: TriggerRequest },
    )
    .delete('/:id', function deleteJob({ params }) {
      cron.delete(params.id)
      return { status: 'ok' }
    })
    .post(
      '/:id/toggle',
      function toggleJob({ params, body }) {
        return { status: 'ok', job: cron.toggle(params.id, body.enabled) }
      },
      { body: ToggleRequest },
    )
    .get(
      '/:id/runs',
      function jobRuns({ params, query }) {
        return { status: 'ok', runs: cron.runs(params.id, query.limit ?? 50) }
      },
      { query: RunsQuery },
    )
}
