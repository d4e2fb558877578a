import { defineCommand, parseArgs, type ParsedArgs } from 'citty'
import { z } from 'zod'
import { CliError, ExitCode, PERMANENT_EXIT_CODES, UsageError } from '../errors'
import { configArg, HostFlag, parseFlags, PathFlag, PortFlag, serverArgs, TokenFlag } from './args'

const args = {
  ...serverArgs,
  ...configArg,
  force: { type: 'boolean', description: 'Stop the running gateway of this config and kill whatever listens on the port first' },
  'service-marker': { type: 'string', description: 'Set by service entries that cannot set environment variables', valueHint: 'name' },
} as const

/**
 * The validated flags of `xopcbot gateway`. Also how `gateway restart` reads the arguments a running gateway
 * recorded, to check the config a new process would load before it stops the old one.
 */
export function gatewayFlags(rawArgs: string[], parsed: ParsedArgs<typeof args> = parseArgs(rawArgs, args)) {
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
  return flags
}

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
    const flags = gatewayFlags(rawArgs, parsed)
    // Loaded here, not at the top: the management sub-commands should not pay for the server's modules.
    const { runGateway } = await import('../lifecycle/run')
    try {
      return await runGateway({
        env: process.env,
        configFlag: flags.config,
        flags: { port: flags.port, host: flags.host, token: flags.token, tokenFile: flags.tokenFile },
        force: flags.force ?? false,
        serviceMarker: flags.serviceMarker,
        argv: ['gateway', ...rawArgs],
        print: (line) => console.log(line),
      })
    } catch (error) {
      throw underLaunchd(error, process.env.XOPCBOT_SERVICE_MARKER ?? flags.serviceMarker)
    }
  },
})

/**
 * systemd does not restart after 65 (damaged data) or 78 (invalid config): RestartPreventExitStatus. launchd has
 * no such list: KeepAlive {SuccessfulExit: false} starts the job again after every non-zero exit, every
 * ThrottleInterval seconds, for ever, each time appending the same error to its log. So under launchd such an
 * error ends with exit 0 (said in the message): the job then stays stopped until the user fixes the cause and
 * runs service-start (or logs in again), as under systemd.
 */
export function underLaunchd(error: unknown, serviceMarker: string | undefined): unknown {
  if (serviceMarker !== 'launchd' || !(error instanceof CliError) || !PERMANENT_EXIT_CODES.has(error.exitCode)) return error
  return new CliError(
    `${error.message} (Exit code 0 instead of ${error.exitCode}, so that launchd does not start the gateway again and again; fix it, then run: xopcbot gateway service-start)`,
    ExitCode.OK,
    { cause: error },
  )
}
