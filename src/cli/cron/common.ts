import type { JobView } from '../../cron/service'
import { UsageError } from '../../errors'
import { isoShort } from '../output'

export const json = { json: { type: 'boolean', description: 'Machine-readable output' } } as const
export const idArg = { id: { type: 'positional', description: 'Job id', required: true } } as const

export const when = (iso: string | null) => (iso ? isoShort(iso) : '-')

export function printJob(job: JobView) {
  console.log(`✅ ${job.name} (${job.id})`)
  console.log(`Schedule: ${job.schedule} (${job.timezone})`)
  console.log(`Enabled: ${job.enabled ? 'yes' : 'no'}`)
  console.log(`Next run: ${when(job.next_run)}`)
}

export function requireId(id: unknown): string {
  if (typeof id !== 'string' || !id) throw new UsageError('a job id is required (see: xopcbot cron list)')
  return id
}
