import { configArg, serverArgs } from '../args'

/**
 * The flags of `xopcbot gateway` (the foreground run). Apart from their checks (flags.ts), which load the config
 * schema: every `gateway …` sub-command loads this command's definition, and most never need that schema.
 */
export const gatewayArgs = {
  ...serverArgs,
  ...configArg,
  force: { type: 'boolean', description: 'Stop the running gateway of this config and kill whatever listens on the port first' },
  // Internal: left out of the help (help.ts).
  'service-marker': { type: 'string', description: 'Set by service entries that cannot set environment variables', valueHint: 'name', hidden: true },
} as const
