import { Elysia } from 'elysia'
import { z } from 'zod'
import { JobInput, type CronService } from '../cron/service'
import { wholeNumber } from './params'

export const TriggerRequest = z.strictObject({ job_id: z.string().min(1, 'must be a non-empty string') })
export const ToggleRequest = z.strictObject({ enabled: z.boolean().optional() })
export const RunsQuery = z.object({ limit: wholeNumber(1, 500).optional() })
export const PreviewQuery = z.object({ schedule: z.string('is required').min(1, 'must be a non-empty string').max(200), timezone: z.string().min(1, 'must be a non-empty string').max(100).optional() })

/** The cron routes of SPEC §6. */
export function cronRoutes(cron: CronService) {
  return new Elysia({ name: 'cron', prefix: '/api/cron' })
    .get('/', function listJobs() {
      return { status: 'ok', jobs: cron.list() }
    })
    .get(
      '/preview',
      async function previewSchedule({ query }) {
        return { status: 'ok', ...(await cron.preview(query.schedule, query.timezone)) }
      },
      { query: PreviewQuery },
    )
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
