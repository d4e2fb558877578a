import { defineCommand } from 'citty'
import { z } from 'zod'
import type { JobView } from '../../cron/service'
import { ExitCode, UsageError } from '../../errors'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { idArg, json, requireId, when } from './common'

const toggleArgs = { ...configArg, ...idArg, ...json, on: { type: 'boolean', description: 'Enable it' }, off: { type: 'boolean', description: 'Disable it' } } as const
export default defineCommand({
  meta: { name: 'toggle', description: 'Enable or disable a cron job (flips it without --on/--off)' },
  args: toggleArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(toggleArgs, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional(), on: z.boolean().optional(), off: z.boolean().optional() })
    if (flags.on && flags.off) throw new UsageError('--on and --off: choose one')
    const id = requireId(args.id)
    const body = flags.on ? { enabled: true } : flags.off ? { enabled: false } : {}
    const { job } = await apiClient(flags.config)<{ job: JobView }>('POST', `/api/cron/${encodeURIComponent(id)}/toggle`, body)
    if (flags.json) console.log(JSON.stringify(job))
    else console.log(`✅ ${job.id} is now ${job.enabled ? 'enabled' : 'disabled'}${job.enabled ? `; next run ${when(job.next_run)}` : ''}`)
    return ExitCode.OK
  },
})
