import { defineCommand } from 'citty'
import { chmodSync, copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { loadConfig } from '../config/load'
import { canonicalConfigPath, configHash, dataDirOf, resolvePaths, type Paths } from '../config/paths'
import { generateToken, updateConfigFile } from '../config/write'
import { readableByOthers, readTokenFile } from '../config/settings'
import { CliError, ExitCode, UsageError } from '../errors'
import { isCompiled } from '../lifecycle/process'
import { serviceContext, serviceManager } from '../service'
import { ServiceError, type ServiceManager, type ServiceSpec } from '../service/types'
import { ensurePrivateDir } from '../storage/files'
import { replaceAtomic } from '../util/atomic-write'
import { pollUntil } from '../util/poll'
import { configArg, HostFlag, parseFlags, PathFlag, PortFlag, TokenFlag } from './args'
import { displayUrl, maskToken } from './output'
import { localUrl } from './target'

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

async function waitHealthy(url: string, timeoutMs: number): Promise<boolean> {
  const answers = () => fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok).catch(() => false)
  return (await pollUntil(answers, { timeoutMs, intervalMs: 100 })) !== null
}

/** Copies the running executable to <home>/bin/xopcbot atomically (copy beside it, then rename). */
function installBinary(paths: Paths): string {
  ensurePrivateDir(paths.binDir)
  const target = join(paths.binDir, process.platform === 'win32' ? 'xopcbot.exe' : 'xopcbot')
  if (canonicalConfigPath(process.execPath) === canonicalConfigPath(target)) return target
  replaceAtomic(target, (temp) => {
    copyFileSync(process.execPath, temp)
    if (process.platform !== 'win32') chmodSync(temp, 0o755)
  })
  return target
}

function managerOrExit() {
  const ctx = serviceContext()
  try {
    return { ctx, manager: serviceManager(ctx) }
  } catch (error) {
    throw new CliError((error as Error).message)
  }
}

/** The manager of this platform, the paths of the config in use, and the name of its service entry. */
function serviceTarget(configFlag: string | undefined) {
  const { ctx, manager } = managerOrExit()
  const paths = resolvePaths({ env: process.env, configFlag })
  return { ctx, manager, paths, name: serviceName(manager.kind, paths) }
}

async function available(manager: ServiceManager) {
  const problem = await manager.unavailable()
  if (problem) throw new CliError(`Cannot install the gateway as a service: ${problem}`)
}

function friendly<T>(task: () => Promise<T>): Promise<T> {
  return task().catch((error) => {
    throw error instanceof ServiceError ? new CliError(error.message) : error
  })
}

const installArgs = {
  port: { type: 'string', description: 'Port (saved in the config)', valueHint: 'number' },
  host: { type: 'string', description: 'Address to bind (saved in the config)', valueHint: 'address' },
  token: { type: 'string', description: 'API token (saved in the config, never in the service entry); one is generated when none is set; visible in ps: prefer --token-file', valueHint: 'token' },
  'token-file': { type: 'string', description: 'Read the API token from this file (saved in the config like --token)', valueHint: 'path' },
  runtime: { type: 'string', description: 'binary (the compiled executable, copied to ~/.xopcbot/bin) or node (this JS runtime and the CLI file); default: what is running now', valueHint: 'node|binary' },
  start: { type: 'boolean', default: true, description: 'Start it now', negativeDescription: 'Install without starting' },
  ...configArg,
} as const

export const install = defineCommand({
  meta: { name: 'install', description: 'Install the gateway as a per-user service (systemd user unit, LaunchAgent, scheduled task)' },
  args: installArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(installArgs, args, rawArgs, {
      port: PortFlag.optional(),
      host: HostFlag.optional(),
      token: TokenFlag.optional(),
      tokenFile: PathFlag.optional(),
      runtime: z.enum(['node', 'binary'], 'must be node or binary').optional(),
      start: z.boolean(),
      config: PathFlag.optional(),
    })
    if (flags.token !== undefined && flags.tokenFile !== undefined) throw new UsageError('--token and --token-file cannot be used together; give the token one way.')
    const fromFile = flags.tokenFile !== undefined ? readTokenFile(flags.tokenFile) : null
    const givenToken = flags.token ?? fromFile?.token
    const { ctx, manager, paths, name } = serviceTarget(flags.config)
    await available(manager)
    const loaded = loadConfig(paths.configPath, process.env)
    const runtime = flags.runtime ?? (isCompiled() ? 'binary' : 'node')
    if (runtime === 'binary' && !isCompiled()) {
      throw new CliError('--runtime binary installs the compiled xopcbot executable, but this is running from source: build it (npm run build) and run its "gateway install", or use --runtime node.')
    }

    // Settings go into the config file (0600), never into the service entry.
    let token = givenToken ?? loaded.config.gateway.auth.token
    const generated = !token
    token ??= generateToken()
    updateConfigFile(paths.configPath, process.env, (raw) => {
      raw.gateway ??= {}
      if (flags.port) raw.gateway.port = flags.port
      if (flags.host) raw.gateway.host = flags.host
      if (givenToken || generated) {
        raw.gateway.auth ??= {}
        raw.gateway.auth.token = token
      }
    })
    const config = loadConfig(paths.configPath, process.env).config
    const variables = [...readFileSync(paths.configPath, 'utf8').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!)

    const program = runtime === 'binary' ? installBinary(paths) : process.execPath
    const env: Record<string, string> = { XOPCBOT_SERVICE_MARKER: manager.kind, XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', HOME: ctx.homeDir }
    if (MINIMAL_PATH[ctx.platform]) env.PATH = MINIMAL_PATH[ctx.platform]!
    if (process.env.XOPCBOT_HOME) env.XOPCBOT_HOME = paths.home
    const spec: ServiceSpec = {
      name,
      description: 'xopcbot gateway',
      program,
      args: [...(runtime === 'node' ? [Bun.main] : []), 'gateway', '--config', paths.configPath],
      workingDirectory: ctx.homeDir,
      env,
      stopTimeoutMs: config.gateway.shutdownTimeoutMs,
      logDir: join(dataDirOf(config, paths.configPath), 'logs'),
    }
    const warnings = await friendly(() => manager.install(spec, { start: flags.start }))
    const url = displayUrl(config.gateway.host, config.gateway.port)
    if (flags.start) {
      if (!(await waitHealthy(localUrl(config.gateway), 30_000))) {
        throw new CliError(`The service ${name} was installed and started, but /health did not answer within 30 s; see: xopcbot gateway logs, xopcbot gateway service-status`)
      }
      console.log('✅ Gateway service installed and running')
    } else console.log('✅ Gateway service installed (not started; start it with: xopcbot gateway service-start)')
    console.log(`Service: ${name} (${manager.entryPath(name)})`)
    console.log(`Runtime: ${runtime} (${program})`)
    console.log('🌐 Access:')
    console.log(`URL: ${url}`)
    console.log(`Token: ${generated ? token : maskToken(token)}${generated ? '   (new: shown once; see it again with: xopcbot gateway token)' : ''}`)
    for (const variable of new Set(variables)) console.log(`⚠️ The config uses \${${variable}}: the service does not see your shell's environment; write the value into the config file (it is private, 0600).`)
    for (const warning of warnings) console.log(`⚠️ ${warning}`)
    if (flags.token !== undefined) console.log('⚠️ The token was given with --token: other users of this machine can see it in the process list (ps) while a command runs. Use --token-file PATH next time.')
    if (flags.tokenFile !== undefined && fromFile && readableByOthers(fromFile.mode)) console.log(`⚠️ The token file ${flags.tokenFile} can be read by other users; make it private: chmod 600 ${flags.tokenFile}`)
    return ExitCode.OK
  },
})

const statusArgs = { ...configArg, json: { type: 'boolean', description: 'Machine-readable output' } } as const

/** The config keys service-status and service-start read: where the gateway listens. */
const ADDRESS_NEEDS = ['gateway.host', 'gateway.port']

export const serviceStatus = defineCommand({
  meta: { name: 'service-status', description: 'Show the service as the service manager sees it (exit 3 when not running)' },
  args: statusArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(statusArgs, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const { manager, paths, name } = serviceTarget(flags.config)
    const status = await friendly(() => manager.status(name))
    let url: string | null = null
    try {
      const { config } = loadConfig(paths.configPath, process.env, { needs: ADDRESS_NEEDS })
      url = displayUrl(config.gateway.host, config.gateway.port)
    } catch {}
    const code = status.state === 'running' ? ExitCode.OK : ExitCode.NOT_RUNNING
    if (flags.json) {
      console.log(JSON.stringify({ name, manager: manager.kind, ...status, url }))
      return code
    }
    // The original layout: each heading underlined to its width.
    const rule = (title: string) => [title, '─'.repeat([...title].length)]
    const lines = [
      ...rule('📋 Service Status'),
      `Installed: ${status.installed ? 'Yes' : 'No'}`,
      `Status: ${status.installed ? status.state : 'not installed'}`,
      `PID: ${status.pid ?? '-'}`,
    ]
    if (status.installed) {
      lines.push(...rule('📝 Configuration'), `Program: ${status.program ?? '-'}`, `Args: ${status.args.join(' ')}`, `Working Dir: ${status.workingDirectory ?? '-'}`)
    }
    if (url) lines.push(...rule('🌐 Access'), `URL: ${url}`)
    lines.push(
      ...rule('📝 Commands'),
      status.installed ? 'xopcbot gateway service-start  # start the service' : 'xopcbot gateway install        # install the service',
      'xopcbot gateway stop           # stop (process)',
      'xopcbot gateway restart        # restart (process)',
      'xopcbot gateway uninstall      # remove the service',
    )
    console.log(lines.join('\n'))
    return code
  },
})

export const serviceStart = defineCommand({
  meta: { name: 'service-start', description: 'Start the installed service through the service manager' },
  args: configArg,
  async run({ args, rawArgs }) {
    const flags = parseFlags(configArg, args, rawArgs, { config: PathFlag.optional() })
    const { manager, paths, name } = serviceTarget(flags.config)
    if (!(await manager.status(name)).installed) throw new CliError(`The service ${name} is not installed; install it with: xopcbot gateway install`)
    await friendly(() => manager.start(name))
    const { config } = loadConfig(paths.configPath, process.env, { needs: ADDRESS_NEEDS })
    if (!(await waitHealthy(localUrl(config.gateway), 30_000))) throw new CliError(`The service ${name} was started, but /health did not answer within 30 s; see: xopcbot gateway logs`)
    console.log(`✅ Service ${name} started`)
    console.log(`URL: ${displayUrl(config.gateway.host, config.gateway.port)}`)
    return ExitCode.OK
  },
})

export const uninstall = defineCommand({
  meta: { name: 'uninstall', description: 'Stop and remove the service; the config and data stay' },
  args: configArg,
  async run({ args, rawArgs }) {
    const flags = parseFlags(configArg, args, rawArgs, { config: PathFlag.optional() })
    const { manager, paths, name } = serviceTarget(flags.config)
    if (!(await manager.status(name)).installed) {
      console.log(`ℹ️ The service ${name} is not installed`)
      return ExitCode.OK
    }
    await friendly(() => manager.uninstall(name))
    console.log(`✅ Service ${name} removed; the config and data are kept (${paths.configPath})`)
    return ExitCode.OK
  },
})
