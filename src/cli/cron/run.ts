import { defineCommand } from 'citty'
import { z } from 'zod'
import type { Run } from '../../cron/service'
import { ExitCode } from '../../errors'
import { pollUntil } from '../../util/poll'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { idArg, json, requireId } from './common'

const runArgs = { ...configArg, ...idArg, ...json } as const
export default defineCommand({
  meta: { name: 'run', description: 'Run a cron job now (in the background) and wait for its result' },
  args: runArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(runArgs, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const id = requireId(args.id)
    const call = apiClient(flags.config)
    const { run_id } = await call<{ run_id: string }>('POST', '/api/cron/trigger', { job_id: id })
    const finished = async () => {
      const { runs } = await call<{ runs: Run[] }>('GET', `/api/cron/${encodeURIComponent(id)}/runs?limit=20`)
      return runs.find((r) => r.id === run_id && r.status !== 'running')
    }
    const done = await pollUntil(finished, { timeoutMs: 300_000, intervalMs: 200 })
    if (!done) {
      console.log(`⏳ ${run_id} is still running; see: xopcbot cron list`)
      return ExitCode.FAILURE
    }
    if (flags.json) console.log(JSON.stringify(done))
    else if (done.status === 'ok') console.log(`✅ ${id} ran (${run_id})${done.reply ? `\n${done.reply}` : ''}`)
    else console.log(`❌ ${id} failed (${run_id}): ${done.error}`)
    return done.status === 'ok' ? ExitCode.OK : ExitCode.FAILURE
  },
})
