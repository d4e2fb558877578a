import { applyGatewayOverrides, type GatewayFlags } from '../config/settings'
import { loadConfig } from '../config/load'
import { resolvePaths, type Env } from '../config/paths'
import { displayUrl, maskToken } from '../cli/output'
import { ExitCode } from '../errors'
import { Gateway } from './gateway'

export interface RunOptions {
  env: Env
  configFlag?: string | undefined
  flags: GatewayFlags
  print: (line: string) => void
}

function banner(gateway: Gateway, configPath: string, configExists: boolean): string[] {
  const { host } = gateway.options.config.gateway
  const token = gateway.token
  return [
    '✅ Gateway is running',
    `Host: ${host}`,
    `Port: ${gateway.port}`,
    '🌐 Access:',
    `URL: ${displayUrl(host, gateway.port)}`,
    `Token: ${token ? maskToken(token) : '(none: only requests from this machine are accepted)'}`,
    `Config: ${configPath}${configExists ? '' : ' (not found: using defaults)'}`,
    'Press Ctrl+C to stop',
  ]
}

/**
 * The foreground run loop (SPEC §5.2): load and validate the config, start, wait for SIGTERM/SIGINT,
 * stop gracefully. A second Ctrl+C while draining exits at once. Resolves to the exit code.
 */
export async function runGateway(options: RunOptions): Promise<number> {
  const paths = resolvePaths({ env: options.env, configFlag: options.configFlag })
  const loaded = loadConfig(paths.configPath, options.env)
  const config = applyGatewayOverrides(loaded.config, options.env, options.flags)
  // Everything the gateway creates (database, WAL, logs) is private to the user.
  process.umask(0o077)

  const gateway = new Gateway({ config, configPath: paths.configPath })
  gateway.start()
  for (const line of banner(gateway, paths.configPath, loaded.exists)) options.print(line)

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => resolve(sig)
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
  })
  process.removeAllListeners('SIGTERM')
  process.removeAllListeners('SIGINT')
  const forceExit = () => {
    gateway.log.warn('second interrupt: exiting without waiting for the drain')
    gateway.closeNow()
    process.exit(130)
  }
  process.once('SIGINT', forceExit)
  process.once('SIGTERM', forceExit)
  await gateway.stop(signal)
  return ExitCode.OK
}
