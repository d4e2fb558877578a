import { defineCommand } from 'citty'
import { z } from 'zod'
import { ExitCode, UsageError } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { json, withStore } from './store'

const approveArgs = { ...configArg, ...json, code: { type: 'positional', description: 'The pairing code the sender received, e.g. ABCD-EF23', required: true } } as const
export default defineCommand({
  meta: { name: 'approve', description: 'Let the sender of a pairing code talk to the assistant' },
  args: approveArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(approveArgs, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const [code, extra] = args._.filter((word) => word !== '')
    if (!code) throw new UsageError('a pairing code is required (see: xopcbot pairing list)')
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const { approval } = withStore(flags.config, (store) => store.approve(code))
    if (flags.json) console.log(JSON.stringify(approval))
    else console.log(`✅ Approved ${approval.channel} sender ${approval.sender_id}${approval.username ? ` (@${approval.username})` : ''}; their next message reaches the assistant.`)
    return ExitCode.OK
  },
})
