import type { Database } from 'bun:sqlite'
import { defineCommand } from 'citty'
import { z } from 'zod'
import { PairingStore, type PairingApproval, type PairingRequest } from '../channels/pairing'
import { loadConfig } from '../config/load'
import { databasePathOf, dataDirOf, resolvePaths } from '../config/paths'
import { AppError, CliError, ExitCode, UsageError } from '../errors'
import { openDatabase } from '../storage/db'
import { configArg, parseFlags, PathFlag } from './args'

const json = { json: { type: 'boolean', description: 'Machine-readable output' } } as const

/** The config keys the pairing commands read. */
export const PAIRING_NEEDS = ['dataDir']

/**
 * The pairing store of a config's database, opened directly: these commands work whether or not the gateway
 * runs (WAL and a busy timeout let both write), and the gateway reads approvals per message.
 */
function withStore<T>(configFlag: string | undefined, use: (store: PairingStore) => T): T {
  const paths = resolvePaths({ env: process.env, configFlag })
  // Only the data directory is read: a ${VAR} elsewhere in the config need not be set in this shell.
  const { config } = loadConfig(paths.configPath, process.env, { needs: PAIRING_NEEDS })
  let db: Database
  try {
    db = openDatabase(databasePathOf(dataDirOf(config, paths.configPath)))
  } catch (error) {
    // A damaged or unreadable database is already a sentence with the path and what to do (exit 65 or 1).
    if (error instanceof CliError) throw error
    throw new CliError(`Cannot open the database in ${dataDirOf(config, paths.configPath)}: ${(error as Error).message}`, ExitCode.FAILURE, { cause: error })
  }
  try {
    return use(new PairingStore(db))
  } catch (error) {
    // The store's refusals (unknown or expired code, nothing to revoke) are sentences for the owner.
    if (error instanceof AppError) throw new CliError(error.message[0]!.toUpperCase() + error.message.slice(1))
    throw error
  } finally {
    db.close()
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n')
}

const when = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
const who = (entry: PairingRequest | PairingApproval) => (entry.username ? `@${entry.username}` : '-')

const list = defineCommand({
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

const approveArgs = { ...configArg, ...json, code: { type: 'positional', description: 'The pairing code the sender received, e.g. ABCD-EF23', required: false } } as const
const approve = defineCommand({
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

const revokeArgs = {
  ...configArg,
  ...json,
  channel: { type: 'positional', description: 'Channel name, e.g. telegram', required: false },
  sender: { type: 'positional', description: 'User id or @username', required: false },
} as const
const revoke = defineCommand({
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

export default defineCommand({
  meta: { name: 'pairing', description: 'Approve or revoke chat senders (dmPolicy "pairing"); works with or without a running gateway' },
  subCommands: { list, approve, revoke },
})
