import { defineCommand } from 'citty'
import { readFileSync } from 'node:fs'
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
    const { ctx, manager, paths, name } = serviceTarget(flags.config)
    await requireServiceSupport(manager)
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
