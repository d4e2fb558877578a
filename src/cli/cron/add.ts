import { defineCommand } from 'citty'
import { z } from 'zod'
import type { JobView } from '../../cron/service'
import { CliError, ExitCode, UsageError } from '../../errors'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { json, printJob } from './common'

const addArgs = {
  ...configArg,
  ...json,
  schedule: { type: 'string', description: 'Cron expression (5 or 6 fields), @hourly/@daily/…, or an ISO-8601 date-time', valueHint: 'expr', required: true },
  message: { type: 'string', description: 'Message for the agent (mode agent) or text to deliver (mode direct)', valueHint: 'text', required: true },
  name: { type: 'string', description: 'A name for the job', valueHint: 'name' },
  mode: { type: 'string', description: 'agent (default) or direct', valueHint: 'mode' },
  channel: { type: 'string', description: 'Deliver the result to this channel …', valueHint: 'channel' },
  'chat-id': { type: 'string', description: '… and this chat', valueHint: 'id' },
  timezone: { type: 'string', description: 'IANA time zone (default: cron.timezone)', valueHint: 'tz' },
  session: { type: 'string', description: 'Session of the agent turns (default: cron:<id>)', valueHint: 'key' },
  disabled: { type: 'boolean', description: 'Create it disabled' },
} as const

export default defineCommand({
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
    // The API's rules for where a job delivers, said in this command's flags: the API names its fields.
    if (flags.mode === 'direct' && (!flags.channel || !flags.chatId)) {
      throw new UsageError('--channel and --chat-id are required with --mode direct (they say where the message is delivered)')
    }
    if (!flags.channel !== !flags.chatId) throw new UsageError(flags.channel ? '--chat-id is required with --channel' : '--channel is required with --chat-id')
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
    const { job } = await apiClient(flags.config)<{ job: JobView }>('POST', '/api/cron/create', body).catch((error: unknown) => {
      throw inFlagTerms(error)
    })
    if (flags.json) console.log(JSON.stringify(job))
    else printJob(job)
    return ExitCode.OK
  },
})

/** The API's field names as this command's flags: `chat_id: …` → `--chat-id: …`. */
const FLAG_OF_FIELD: Record<string, string> = {
  schedule: '--schedule',
  message: '--message',
  name: '--name',
  mode: '--mode',
  channel: '--channel',
  chat_id: '--chat-id',
  timezone: '--timezone',
  session: '--session',
}

/** An API error about fields of the request (`field: problem; field: problem`), reworded with the flags that set them. */
function inFlagTerms(error: unknown): unknown {
  if (!(error instanceof CliError)) return error
  const message = error.message.replace(/(^|; )([a-z_]+)(?=: )/g, (whole, start: string, field: string) => (FLAG_OF_FIELD[field] ? `${start}${FLAG_OF_FIELD[field]}` : whole))
  return message === error.message ? error : new CliError(message, error.exitCode, { cause: error })
}
