import { defineCommand } from 'citty'
import { z } from 'zod'
import { ExitCode, UsageError } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { json, withStore } from './store'

const revokeArgs = {
  ...configArg,
  ...json,
  channel: { type: 'positional', description: 'Channel name, e.g. telegram', required: true },
  sender: { type: 'positional', description: 'User id or @username', required: true },
} as const
export default defineCommand({
  meta: { name: 'revoke', description: 'Take access away from an approved sender' },
  args: revokeArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(revokeArgs, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const [channel, sender, extra] = args._.filter((word) => word !== '')
    if (!channel || !sender) throw new UsageError('usage: xopcbot pairing revoke <channel> <user id or @username>')
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const revoked = withStore(flags.config, (store) => store.revoke(sender, channel))
    if (flags.json) console.log(JSON.stringify(revoked))
    else for (const a of revoked) console.log(`✅ Revoked ${a.channel} sender ${a.sender_id}${a.username ? ` (@${a.username})` : ''}; their messages are refused again.`)
    return ExitCode.OK
  },
})
