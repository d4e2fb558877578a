import { defineCommand } from 'citty'
import { z } from 'zod'
import { UsageError } from '../errors'
import { configArg, HostFlag, parseFlags, PathFlag, PortFlag, serverArgs, TokenFlag } from './args'

const args = {
  ...serverArgs,
  ...configArg,
  force: { type: 'boolean', description: 'Stop the running gateway of this config and kill whatever listens on the port first' },
  'service-marker': { type: 'string', description: 'Set by service entries that cannot set environment variables', valueHint: 'name' },
} as const

export default defineCommand({
  meta: { name: 'gateway', description: 'Run the gateway in the foreground (Ctrl+C stops it), or manage it' },
  args,
  subCommands: {
    status: () => import('./gateway-status').then((m) => m.default),
    stop: () => import('./gateway-stop').then((m) => m.default),
    restart: () => import('./gateway-restart').then((m) => m.default),
    logs: () => import('./gateway-logs').then((m) => m.default),
    token: () => import('./gateway-token').then((m) => m.default),
    install: () => import('./gateway-service').then((m) => m.install),
    'service-start': () => import('./gateway-service').then((m) => m.serviceStart),
    'service-status': () => import('./gateway-service').then((m) => m.serviceStatus),
    uninstall: () => import('./gateway-service').then((m) => m.uninstall),
  },
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, {
      port: PortFlag.optional(),
      host: HostFlag.optional(),
      token: TokenFlag.optional(),
      tokenFile: PathFlag.optional(),
      config: PathFlag.optional(),
      force: z.boolean().optional(),
      serviceMarker: z.string().min(1).optional(),
    })
    if (flags.token !== undefined && flags.tokenFile !== undefined) throw new UsageError('--token and --token-file cannot be used together; give the token one way.')
    // Loaded here, not at the top: the management sub-commands should not pay for the server's modules.
    const { runGateway } = await import('../lifecycle/run')
    return runGateway({
      env: process.env,
      configFlag: flags.config,
      flags: { port: flags.port, host: flags.host, token: flags.token, tokenFile: flags.tokenFile },
      force: flags.force ?? false,
      serviceMarker: flags.serviceMarker,
      argv: ['gateway', ...rawArgs],
      print: (line) => console.log(line),
    })
  },
})
