import { parseArgs, type ParsedArgs } from 'citty'
import { z } from 'zod'
import { UsageError } from '../../errors'
import { parseFlags, PathFlag } from '../args'
import { HostFlag, PortFlag, TokenFlag } from '../server-flags'
import { gatewayArgs } from './run-args'

/**
 * The validated flags of `xopcbot gateway`. Also how `gateway restart` reads the arguments a running gateway
 * recorded, to check the config a new process would load before it stops the old one.
 */
export function gatewayFlags(rawArgs: string[], parsed: ParsedArgs<typeof gatewayArgs> = parseArgs(rawArgs, gatewayArgs)) {
  const flags = parseFlags(gatewayArgs, parsed, rawArgs, {
    port: PortFlag.optional(),
    host: HostFlag.optional(),
    token: TokenFlag.optional(),
    tokenFile: PathFlag.optional(),
    config: PathFlag.optional(),
    force: z.boolean().optional(),
    serviceMarker: z.string().min(1).optional(),
  })
  if (flags.token !== undefined && flags.tokenFile !== undefined) throw new UsageError('--token and --token-file cannot be used together; give the token one way.')
  return flags
}
