import { defineCommand } from 'citty'
import { z } from 'zod'
import { ExitCode } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { table } from '../output'
import { json, when, who, withStore } from './store'

export default defineCommand({
  meta: { name: 'list', description: 'List pending pairing requests and approved senders' },
  args: { ...configArg, ...json },
  async run({ args, rawArgs }) {
    const flags = parseFlags({ ...configArg, ...json }, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const { requests, approved } = withStore(flags.config, (store) => ({ requests: store.pending(), approved: store.approved() }))
    if (flags.json) {
      console.log(JSON.stringify({ requests, approved }))
      return ExitCode.OK
    }
    if (requests.length === 0) console.log('No pending pairing requests.')
    else {
      console.log('Pending pairing requests:')
      console.log(table([['CODE', 'CHANNEL', 'SENDER', 'USERNAME', 'EXPIRES'], ...requests.map((r) => [r.code, r.channel, r.sender_id, who(r), when(r.expires_at)])]))
      console.log('Approve one with: xopcbot pairing approve <code>')
    }
    console.log('')
    if (approved.length === 0) console.log('No approved senders.')
    else {
      console.log('Approved senders:')
      console.log(table([['CHANNEL', 'SENDER', 'USERNAME', 'APPROVED'], ...approved.map((a) => [a.channel, a.sender_id, who(a), when(a.approved_at)])]))
    }
    return ExitCode.OK
  },
})
