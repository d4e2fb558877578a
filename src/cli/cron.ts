import { defineCommand } from 'citty'
import { z } from 'zod'
import type { JobView, Run } from '../cron/service'
import { ExitCode, UsageError } from '../errors'
import { pollUntil } from '../util/poll'
import { apiClient } from './api-client'
import { configArg, parseFlags, PathFlag } from './args'

const json = { json: { type: 'boolean', description: 'Machine-readable output' } } as const
const idArg = { id: { type: 'positional', description: 'Job id', required: false } } as const

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n')
}

const when = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-')

function printJob(job: JobView) {
  console.log(`✅ ${job.name} (${job.id})`)
  console.log(`Schedule: ${job.schedule} (${job.timezone})`)
  console.log(`Enabled: ${job.enabled ? 'yes' : 'no'}`)
  console.log(`Next run: ${when(job.next_run)}`)
}

function requireId(id: unknown): string {
  if (typeof id !== 'string' || !id) throw new UsageError('a job id is required (see: xopcbot cron list)')
  return id
}

const list = defineCommand({
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

const addArgs = {
  ...configArg,
  ...json,
  schedule: { type: 'string', description: 'Cron expression (5 or 6 fields), @hourly/@daily/…, or an ISO-8601 date-time', valueHint: 'expr' },
  message: { type: 'string', description: 'Message for the agent (mode agent) or text to deliver (mode direct)', valueHint: 'text' },
  name: { type: 'string', description: 'A name for the job', valueHint: 'name' },
  mode: { type: 'string', description: 'agent (default) or direct', valueHint: 'mode' },
  channel: { type: 'string', description: 'Deliver the result to this channel …', valueHint: 'channel' },
  'chat-id': { type: 'string', description: '… and this chat', valueHint: 'id' },
  timezone: { type: 'string', description: 'IANA time zone (default: cron.timezone)', valueHint: 'tz' },
  session: { type: 'string', description: 'Session of the agent turns (default: cron:<id>)', valueHint: 'key' },
  disabled: { type: 'boolean', description: 'Create it disabled' },
} as const

const add = defineCommand({
  meta: { name: 'add', description: 'Add a cron job' },
  args: addArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(addArgs, args, rawArgs, {
      config: PathFlag.optional(),
      json: z.boolean().optional(),
      schedule: z.string('is required').min(1, 'needs a value'),
      message: z.string('is required').min(1, 'needs a value'),
      name: z.string().min(1).optional(),
      mode: z.enum(['agent', 'direct'], 'must be agent or direct').optional(),
      channel: z.string().min(1).optional(),
      chatId: z.string().min(1).optional(),
      timezone: z.string().min(1).optional(),
      session: z.string().min(1).optional(),
      disabled: z.boolean().optional(),
    })
    const body = {
      schedule: flags.schedule,
      message: flags.message,
      ...(flags.name ? { name: flags.name } : {}),
      ...(flags.mode ? { mode: flags.mode } : {}),
      ...(flags.channel ? { channel: flags.channel } : {}),
      ...(flags.chatId ? { chat_id: flags.chatId } : {}),
      ...(flags.timezone ? { timezone: flags.timezone } : {}),
      ...(flags.session ? { session: flags.session } : {}),
      ...(flags.disabled ? { enabled: false } : {}),
    }
    const { job } = await apiClient(flags.config)<{ job: JobView }>('POST', '/api/cron/create', body)
    if (flags.json) console.log(JSON.stringify(job))
    else printJob(job)
    return ExitCode.OK
  },
})

const rm = defineCommand({
  meta: { name: 'rm', description: 'Delete a cron job' },
  args: { ...configArg, ...idArg },
  async run({ args, rawArgs }) {
    const flags = parseFlags({ ...configArg, ...idArg }, args, rawArgs, { config: PathFlag.optional() })
    const id = requireId(args.id)
    await apiClient(flags.config)('DELETE', `/api/cron/${encodeURIComponent(id)}`)
    console.log(`✅ Deleted ${id}`)
    return ExitCode.OK
  },
})

const toggleArgs = { ...configArg, ...idArg, ...json, on: { type: 'boolean', description: 'Enable it' }, off: { type: 'boolean', description: 'Disable it' } } as const
const toggle = defineCommand({
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

const runArgs = { ...configArg, ...idArg, ...json } as const
const run = defineCommand({
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

export default defineCommand({
  meta: { name: 'cron', description: 'Manage the cron jobs of the running gateway' },
  subCommands: { list, add, rm, toggle, run },
})
