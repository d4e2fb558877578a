import { defineCommand } from 'citty'
import { ExitCode } from '../../errors'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { idArg, requireId } from './common'

export default defineCommand({
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
