import { defineCommand } from 'citty'
import { z } from 'zod'
import type { JobView } from '../../cron/service'
import { ExitCode } from '../../errors'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { table } from '../output'
import { json, when } from './common'

export default defineCommand({
  meta: { name: 'list', description: 'List the cron jobs' },
  args: { ...configArg, ...json },
  async run({ args, rawArgs }) {
    const flags = parseFlags({ ...configArg, ...json }, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const { jobs } = await apiClient(flags.config)<{ jobs: JobView[] }>('GET', '/api/cron')
    if (flags.json) console.log(JSON.stringify(jobs))
    else if (jobs.length === 0) console.log('No cron jobs. Add one with: xopcbot cron add --schedule "0 8 * * 1-5" --message "…"')
    else {
      console.log(
        table([
          ['ID', 'NAME', 'SCHEDULE', 'ENABLED', 'NEXT RUN', 'LAST'],
          ...jobs.map((j) => [j.id, j.name, `${j.schedule} ${j.timezone}`, j.enabled ? 'yes' : 'no', when(j.next_run), j.last_status ?? '-']),
        ]),
      )
    }
    return ExitCode.OK
  },
})
