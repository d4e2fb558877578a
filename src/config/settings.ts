import { readFileSync, statSync } from 'node:fs'
import { z } from 'zod'
import { CliError, ConfigError } from '../errors'
import { describeIssues, describeProblem } from '../validation'
import type { Env } from './paths'
import { Host, PortFromText, Token, type Config } from './schema'

/** Gateway settings given on the command line (already validated by the CLI). */
export interface GatewayFlags {
  host?: string | undefined
  port?: number | undefined
  token?: string | undefined
  /** `--token-file`: read (again) whenever the effective config is made, so a restart sees a changed file */
  tokenFile?: string | undefined
}

const GatewayEnv = z.object({
  XOPCBOT_GATEWAY_HOST: Host.optional(),
  XOPCBOT_GATEWAY_PORT: PortFromText.optional(),
  XOPCBOT_GATEWAY_TOKEN: Token.optional(),
})

const nonEmpty = (value: string | undefined) => (value === undefined || value === '' ? undefined : value)

/**
 * Reads the token of `--token-file PATH`: the file's text without its trailing newline must be a valid token.
 * `mode` lets the caller warn when others can read the file.
 */
export function readTokenFile(path: string): { token: string; mode: number } {
  let text: string
  let mode: number
  try {
    const stat = statSync(path)
    if (!stat.isFile()) throw new CliError(`--token-file: ${path} is not a file; give the path of a file that holds the token.`)
    mode = stat.mode
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if (error instanceof CliError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new CliError(`--token-file: ${path} does not exist; write the token into it (one line, chmod 600) or give another path.`)
    if (code === 'EACCES' || code === 'EPERM') throw new CliError(`--token-file: ${path} cannot be read (permission denied); the gateway's user must be able to read it.`)
    throw new CliError(`--token-file: cannot read ${path} (${code ?? (error as Error).message}).`)
  }
  const token = text.replace(/[\r\n]+$/, '')
  if (token === '') throw new CliError(`--token-file: ${path} is empty; write the token into it.`)
  const parsed = Token.safeParse(token)
  if (!parsed.success) throw new CliError(`--token-file: the token in ${path} ${describeProblem(parsed.error.issues[0]!)}.`)
  return { token, mode }
}

/** Whether a file's mode lets the group or others read it (not meaningful on Windows). */
export function readableByOthers(mode: number, platform: NodeJS.Platform = process.platform): boolean {
  return platform !== 'win32' && (mode & 0o044) !== 0
}

/** Where the effective token comes from (SPEC §3 precedence): `--token`/`--token-file` > environment > config. */
export function tokenSource(env: Env, flags: GatewayFlags = {}): 'flag' | 'file' | 'env' | 'config' {
  if (flags.token !== undefined) return 'flag'
  if (flags.tokenFile !== undefined) return 'file'
  return nonEmpty(env.XOPCBOT_GATEWAY_TOKEN) !== undefined ? 'env' : 'config'
}

/**
 * The effective config: CLI flag > environment > config file > default (SPEC §3). Returns a new object;
 * the loaded config is not changed.
 */
export function applyGatewayOverrides(config: Config, env: Env, flags: GatewayFlags = {}): Config {
  const parsed = GatewayEnv.safeParse({
    XOPCBOT_GATEWAY_HOST: nonEmpty(env.XOPCBOT_GATEWAY_HOST),
    XOPCBOT_GATEWAY_PORT: nonEmpty(env.XOPCBOT_GATEWAY_PORT),
    XOPCBOT_GATEWAY_TOKEN: nonEmpty(env.XOPCBOT_GATEWAY_TOKEN),
  })
  if (!parsed.success) throw new ConfigError('environment', describeIssues(parsed.error.issues))
  const fromEnv = parsed.data
  return {
    ...config,
    gateway: {
      ...config.gateway,
      host: flags.host ?? fromEnv.XOPCBOT_GATEWAY_HOST ?? config.gateway.host,
      port: flags.port ?? fromEnv.XOPCBOT_GATEWAY_PORT ?? config.gateway.port,
      auth: { token: flags.token ?? (flags.tokenFile !== undefined ? readTokenFile(flags.tokenFile).token : undefined) ?? fromEnv.XOPCBOT_GATEWAY_TOKEN ?? config.gateway.auth.token },
    },
  }
}
