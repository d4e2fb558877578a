import { defineCommand } from 'citty'
import { z } from 'zod'
import type { JobView } from '../../cron/service'
import { ExitCode } from '../../errors'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { json, printJob } from './common'

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
