import { defineCommand } from 'citty'
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { z } from 'zod'
import { loadConfig } from '../../config/load'
import { readableByOthers, readTokenFile } from '../../config/settings'
import { generateToken, updateConfigFile } from '../../config/write'
import { CliError, ExitCode, UsageError } from '../../errors'
import { waitHealthy } from '../../lifecycle/control'
import { isCompiled } from '../../lifecycle/process'
import { localUrl } from '../../net/url'
import { installBinary } from '../../service/binary'
import { gatewayServiceSpec } from '../../service/spec'
import type { ServiceManager } from '../../service/types'
import { configArg, parseFlags, PathFlag } from '../args'
import { HostFlag, PortFlag, TokenFlag } from '../server-flags'
import { displayUrl, maskToken } from '../output'
import { serviceTarget } from './service-target'

/** Refuses early, with the reason, where the service manager cannot be used (e.g. no systemd user session). */
async function requireServiceSupport(manager: ServiceManager) {
  const problem = await manager.unavailable()
  if (problem) throw new CliError(`Cannot install the gateway as a service: ${problem}`)
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

export default defineCommand({
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
    // What the entry would run is checked first: it needs neither the service manager nor the config.
    const runtime = flags.runtime ?? (isCompiled() ? 'binary' : 'node')
    if (runtime === 'binary' && !isCompiled()) {
      throw new CliError('--runtime binary installs the compiled xopcbot executable, but this is running from source: build it (npm run build) and run its "gateway install", or use --runtime node.')
    }
    if (runtime === 'node' && isCompiled()) {
      throw new CliError('--runtime node runs the source of a checkout with Bun, but this is the compiled executable: use --runtime binary, or run "gateway install" from the checkout (npm run xopcbot -- gateway install).')
    }
    if (runtime === 'node') requireRunnable(process.execPath, Bun.main)
    const { ctx, manager, paths, name } = serviceTarget(flags.config)
    await requireServiceSupport(manager)
    const loaded = loadConfig(paths.configPath, process.env)

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

    const program = runtime === 'binary' ? installBinary(paths.binDir) : process.execPath
    const spec = gatewayServiceSpec({ ctx, kind: manager.kind, name, paths, config, runtime, program, entry: Bun.main, env: process.env })
    const warnings = await manager.install(spec, { start: flags.start })
    const url = displayUrl(config.gateway.host, config.gateway.port)
    if (flags.start) {
      if (!(await waitHealthy(localUrl(config.gateway), 30_000))) {
        throw new CliError(`The service ${name} was installed and started, but /health did not answer within 30 s; see: xopcbot gateway logs, xopcbot gateway service-status`)
      }
      console.log('✅ Gateway service installed and running')
    } else console.log('✅ Gateway service installed (not started; start it with: xopcbot gateway service-start)')
    console.log(`Service: ${name} (${manager.entryPath(name)})`)
    console.log(`Runtime: ${runtime === 'binary' ? `binary (${program})` : describeSourceRuntime(program, Bun.main)}`)
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

/**
 * What `--runtime node` runs, in words: Bun (xopcbot needs it; Node.js cannot run it) on the CLI file. From a
 * checkout that Bun is node_modules/bun/bin/bun.exe, on every platform: the npm package "bun" moves the real
 * executable there under that name, so that one `bin` entry works everywhere.
 */
function describeSourceRuntime(bun: string, entry: string): string {
  const root = checkoutOf(entry)
  const inside = root !== null && !relative(root, bun).startsWith('..')
  return `bun${inside ? ' (from this checkout)' : ''}: ${bun} ${entry}`
}

/** The folder of the package.json above the CLI file: the checkout it runs from. */
function checkoutOf(entry: string): string | null {
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return null
  }
}

/** The entry will run `bun entry`: both must still be there (a checkout moved, or bun removed since it started). */
function requireRunnable(bun: string, entry: string) {
  try {
    accessSync(bun, constants.X_OK)
  } catch {
    throw new CliError(`--runtime node: the Bun executable ${bun} that runs this command is gone or not executable; reinstall the checkout's packages (npm install), then install again.`)
  }
  if (!existsSync(entry)) throw new CliError(`--runtime node: the CLI file ${entry} is gone; run "gateway install" from the checkout it is in now.`)
}
