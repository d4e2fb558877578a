import { join } from 'node:path'
import { canonicalConfigPath, configHash, dataDirOf, type Paths } from '../config/paths'
import type { Config } from '../config/schema'
import type { ServiceContext, ServiceManager, ServiceSpec } from './types'

/** The entry's name: one per config, so that several gateways can be installed side by side (SPEC §9). */
export function serviceName(kind: ServiceManager['kind'], paths: Paths): string {
  const base = kind === 'launchd' ? 'ai.xopcbot.gateway' : 'xopcbot-gateway'
  const isDefault = canonicalConfigPath(paths.configPath) === canonicalConfigPath(join(paths.home, 'config.json'))
  return isDefault ? base : `${base}-${configHash(canonicalConfigPath(paths.configPath)).slice(0, 8)}`
}

const MINIMAL_PATH: Partial<Record<NodeJS.Platform, string>> = {
  linux: '/usr/local/bin:/usr/bin:/bin',
  darwin: '/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin',
}

export interface GatewayServiceOptions {
  ctx: ServiceContext
  kind: ServiceManager['kind']
  name: string
  paths: Paths
  config: Config
  /** binary: `program` is the compiled executable; node: `program` is the JS runtime and `entry` the CLI file */
  runtime: 'binary' | 'node'
  program: string
  entry: string
  /** the environment of the installing shell: an XOPCBOT_HOME there is kept */
  env: Record<string, string | undefined>
}

/**
 * What the unit / plist / task runs: `xopcbot gateway --config <file>` with a minimal environment. Settings are
 * in the config file (0600), never in the entry; the marker tells the gateway which manager supervises it.
 */
export function gatewayServiceSpec(options: GatewayServiceOptions): ServiceSpec {
  const { ctx, kind, paths, config } = options
  const env: Record<string, string> = { XOPCBOT_SERVICE_MARKER: kind, XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', HOME: ctx.homeDir }
  if (MINIMAL_PATH[ctx.platform]) env.PATH = MINIMAL_PATH[ctx.platform]!
  if (options.env.XOPCBOT_HOME) env.XOPCBOT_HOME = paths.home
  return {
    name: options.name,
    description: 'xopcbot gateway',
    program: options.program,
    args: [...(options.runtime === 'node' ? [options.entry] : []), 'gateway', '--config', paths.configPath],
    workingDirectory: ctx.homeDir,
    env,
    stopTimeoutMs: config.gateway.shutdownTimeoutMs,
    logDir: join(dataDirOf(config, paths.configPath), 'logs'),
  }
}
