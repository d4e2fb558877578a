import { parseArgs, type ParsedArgs } from 'citty'
import { z } from 'zod'
import { UsageError } from '../../errors'
import { configArg, HostFlag, parseFlags, PathFlag, PortFlag, serverArgs, TokenFlag } from '../args'

/** The flags of `xopcbot gateway` (the foreground run). */
export const gatewayArgs = {
  ...serverArgs,
  ...configArg,
  force: { type: 'boolean', description: 'Stop the running gateway of this config and kill whatever listens on the port first' },
  'service-marker': { type: 'string', description: 'Set by service entries that cannot set environment variables', valueHint: 'name' },
} as const

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
