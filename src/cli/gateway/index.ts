import { defineCommand } from 'citty'
import { AppError, CliError, ExitCode, PERMANENT_EXIT_CODES } from '../../errors'
import { gatewayArgs } from './run-args'

/** `xopcbot gateway`: runs the gateway in the foreground; its sub-commands manage it, one per file here. */
export default defineCommand({
  meta: { name: 'gateway', description: 'Run the gateway in the foreground (Ctrl+C stops it), or manage it' },
  args: gatewayArgs,
  subCommands: {
    status: () => import('./status').then((m) => m.default),
    stop: () => import('./stop').then((m) => m.default),
    restart: () => import('./restart').then((m) => m.default),
    logs: () => import('./logs').then((m) => m.default),
    token: () => import('./token').then((m) => m.default),
    install: () => import('./install').then((m) => m.default),
    'service-start': () => import('./service-start').then((m) => m.default),
    'service-status': () => import('./service-status').then((m) => m.default),
    uninstall: () => import('./uninstall').then((m) => m.default),
  },
  async run({ args: parsed, rawArgs }) {
    // Loaded here, not at the top: the management sub-commands should not pay for the server's modules, nor
    // for the config schema that checks these flags.
    const { gatewayFlags } = await import('./flags')
    const flags = gatewayFlags(rawArgs, parsed)
    const [{ runGateway }, { startBanner }] = await Promise.all([import('../../lifecycle/run'), import('./banner')])
    try {
      return await runGateway({
        env: process.env,
        configFlag: flags.config,
        flags: { port: flags.port, host: flags.host, token: flags.token, tokenFile: flags.tokenFile },
        force: flags.force ?? false,
        serviceMarker: flags.serviceMarker,
        argv: ['gateway', ...rawArgs],
        print: (line) => console.log(line),
        banner: (started) => {
          // The executable starts with the JIT reluctant (build/build.ts), right for the run-once code of a
          // command; from here on this is a server, which wants the normal JIT.
          Bun.unsafe.setJITPolicy(1)
          return startBanner(started, flags)
        },
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
  if (serviceMarker !== 'launchd' || !(error instanceof AppError) || !PERMANENT_EXIT_CODES.has(error.exitCode)) return error
  return new CliError(
    `${error.message} (Exit code 0 instead of ${error.exitCode}, so that launchd does not start the gateway again and again; fix it, then run: xopcbot gateway service-start)`,
    ExitCode.OK,
    { cause: error },
  )
}
