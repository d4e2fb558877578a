import { spawn } from 'node:child_process'
import { closeSync } from 'node:fs'
import { resolve } from 'node:path'
import { loadConfig } from '../config/load'
import { resolvePaths, type Env, type Paths } from '../config/paths'
import { applyGatewayOverrides, readTokenFile } from '../config/settings'
import { CliError } from '../errors'
import {
  inspectLock,
  lockPathFor,
  otherProgramMessage,
  readKeptToken,
  readLock,
  removeStaleLock,
  unverifiedLockMessage,
  withoutTokenArgs,
  type LockInfo,
  type LockState,
} from '../lifecycle/lock'
import { identify } from '../lifecycle/process'
import { openStderrFile } from '../lifecycle/restart-report'
import { pollUntil } from '../util/poll'
import { gatewayFlags } from './gateway'
import { displayUrl } from './output'

/** The gateway a management command is about: the one holding the lock of the config in use. */
export interface Target {
  paths: Paths
  lockPath: string
  state: LockState
}

export function locate(configFlag: string | undefined): Target {
  const paths = resolvePaths({ env: process.env, configFlag })
  const lockPath = lockPathFor(paths.locksDir, paths.configPath)
  return { paths, lockPath, state: inspectLock(lockPath) }
}

/**
 * The running gateway's lock, or null after saying that none runs (with `line`). A stale lock found on the
 * way — its process gone, or its PID now running another program — is removed and reported; nothing is
 * signalled. A lock whose PID cannot be verified is an error: it is neither signalled nor removed.
 */
export function runningOrReport(target: Target, line: string): LockInfo | null {
  const { state } = target
  if (state.state === 'running') return state.info
  if (state.state === 'unverified') throw new CliError(unverifiedLockMessage(target.lockPath, state.info))
  if (state.state === 'stale') {
    removeStaleLock(target.lockPath, state.info)
    const pid = state.info?.pid
    if (state.info && state.other) console.log(`⚠️ ${otherProgramMessage(state.info, state.other)} Removed the stale lock.`)
    else console.log(`⚠️ Removed a stale lock${pid ? ` of pid ${pid}` : ''}: that process is gone.`)
  }
  console.log(line)
  return null
}

/** Where a local client reaches the gateway: a wildcard bind address is reached on loopback. */
export function localUrl(info: Pick<LockInfo, 'host' | 'port'>): string {
  return displayUrl(info.host === '0.0.0.0' || info.host === '::' ? '127.0.0.1' : info.host, info.port)
}

export async function healthOf(info: Pick<LockInfo, 'host' | 'port'>): Promise<{ state: 'healthy' | 'draining' | 'unreachable'; uptime?: number }> {
  try {
    const response = await fetch(`${localUrl(info)}/health`, { signal: AbortSignal.timeout(2000) })
    const body = (await response.json()) as { status?: string; uptime?: number }
    return { state: response.ok ? 'healthy' : 'draining', ...(typeof body.uptime === 'number' ? { uptime: body.uptime } : {}) }
  } catch {
    return { state: 'unreachable' }
  }
}

/** The value of a flag in recorded arguments (`--name value` or `--name=value`). */
function flagValue(argv: string[], name: string): string | undefined {
  const index = argv.indexOf(name)
  if (index >= 0) return argv[index + 1]
  return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1)
}

/**
 * The token a client must send: for a running gateway, the token it keeps beside its lock (given by
 * `--token` or its environment) or the file of its `--token-file`; else the environment, else the config.
 */
export function effectiveToken(paths: Paths, info: LockInfo | null): string | null {
  if (info) {
    const kept = readKeptToken(lockPathFor(paths.locksDir, paths.configPath), info)
    if (kept) return kept
    const file = flagValue(info.argv, '--token-file')
    if (file) {
      try {
        return readTokenFile(resolve(info.cwd, file)).token
      } catch {
        return null
      }
    }
    // A gateway of an older version recorded the --token value itself.
    const given = flagValue(info.argv, '--token')
    if (given && given !== '***') return given
  }
  // The environment overrides the config (SPEC §3); otherwise only gateway.auth is read, so a ${VAR} elsewhere
  // need not be set in this shell. One there that is not set is a ConfigError naming it (exit 78).
  if (process.env.XOPCBOT_GATEWAY_TOKEN) return process.env.XOPCBOT_GATEWAY_TOKEN
  return loadConfig(paths.configPath, process.env, { needs: TOKEN_NEEDS }).config.gateway.auth.token
}

/** The config keys a command reads to find the API token. */
export const TOKEN_NEEDS = ['gateway.auth']

/**
 * What a restart needs to start the gateway of `info` again with the same token: the token it keeps beside
 * its lock, if any. Read before the gateway stops (its kept token goes with its lock). A gateway whose lock
 * says `--token ***` but whose token cannot be found is not restarted: it would come back without it.
 */
export function tokenForRestart(lockPath: string, info: LockInfo): string | null {
  const kept = readKeptToken(lockPath, info)
  if (!kept && flagValue(info.argv, '--token') === '***') {
    throw new CliError(`The gateway (pid ${info.pid}) was started with --token, and its token cannot be read back; stop it and start it again with --token-file PATH or XOPCBOT_GATEWAY_TOKEN.`)
  }
  return kept
}

/** How a restart starts the gateway of a lock again: its recorded command line, in its directory, with this CLI's environment. */
export interface StartPlan {
  execPath: string
  argv: string[]
  cwd: string
  env: Env
}

/**
 * The start of the gateway of `info` again. A kept token (see tokenForRestart) goes through the environment,
 * never on the command line, where other users could read it. The config file is pinned to the lock's (a
 * `--config` in the arguments still wins, and names the same file), so that the new process runs the config
 * this command was about even when the gateway found it through its own XOPCBOT_CONFIG.
 */
export function startPlan(info: Pick<LockInfo, 'execPath' | 'argv' | 'cwd' | 'configPath'>, token: string | null = null): StartPlan {
  return {
    execPath: info.execPath,
    argv: token ? withoutTokenArgs(info.argv) : info.argv,
    cwd: info.cwd,
    env: { ...process.env, XOPCBOT_CONFIG: info.configPath, XOPCBOT_BACKGROUND: '1', ...(token ? { XOPCBOT_GATEWAY_TOKEN: token } : {}) },
  }
}

/**
 * Loads the config the process of `plan` would load — the same loader, environment, flags (a relative
 * `--config` or `--token-file` taken from its directory) — and throws the error its start would print.
 */
export function checkStart(plan: StartPlan) {
  const flags = gatewayFlags(plan.argv.slice(plan.argv.indexOf('gateway') + 1))
  const paths = resolvePaths({ env: plan.env, configFlag: flags.config, cwd: plan.cwd })
  const tokenFile = flags.tokenFile === undefined ? undefined : resolve(plan.cwd, flags.tokenFile)
  applyGatewayOverrides(loadConfig(paths.configPath, plan.env).config, plan.env, { host: flags.host, port: flags.port, token: flags.token, tokenFile })
}

/**
 * Starts the gateway of `plan` in the background. Its stderr goes to a private file beside the lock (see
 * restart-report.ts): what it prints if it fails to start.
 */
export function spawnDetached(plan: StartPlan, lockPath: string) {
  const stderr = openStderrFile(lockPath)
  try {
    const child = spawn(plan.execPath, plan.argv, { detached: true, stdio: ['ignore', 'ignore', stderr], cwd: plan.cwd, env: plan.env })
    child.unref()
    return child
  } finally {
    closeSync(stderr)
  }
}

/**
 * Waits until the lock names a live process that `accept`s and that answers /health, or until `failed`
 * reports something, asked on every round (also once more after the gateway looked healthy, for a failure
 * reported meanwhile, e.g. an in-place restart that fell back to the old config). Null after `timeoutMs`.
 */
export async function waitForGateway<F>(
  lockPath: string,
  accept: (info: LockInfo) => boolean,
  timeoutMs: number,
  failed: () => F | null = () => null,
): Promise<{ info: LockInfo } | { failure: F } | null> {
  return pollUntil<{ info: LockInfo } | { failure: F }>(
    async () => {
      let failure = failed()
      if (failure) return { failure }
      const info = readLock(lockPath)
      if (!info || !accept(info) || identify(info).kind !== 'gateway' || (await healthOf(info)).state !== 'healthy') return null
      failure = failed()
      return failure ? { failure } : { info }
    },
    { timeoutMs, intervalMs: 50 },
  )
}

export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, `${s}s`].filter(Boolean).join(' ')
}
