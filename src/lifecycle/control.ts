import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync } from 'node:fs'
import { resolve } from 'node:path'
import { loadConfig, readTokenFile } from '../config/lazy'
import { resolvePaths, type Env, type Paths } from '../config/paths'
import { CliError } from '../errors'
import { localUrl } from '../net/url'
import { NONCE_HEADER } from '../net/control'
import { pollUntil } from '../util/poll'
import { inspectLock, lockPathFor, readKeptToken, readLock, removeStaleLock, unverifiedLockMessage, withoutOneShotArgs, withoutTokenArgs, type LockInfo, type LockState } from './lock'
import { identify, signalGateway, waitForExit } from './process'
import { openStderrFile } from './restart-report'

// Process control of a gateway from outside it, as every management command needs it: find the gateway of a
// config, ask its health, signal or stop it, start it in the background and wait for it. No sentences for the
// user here beyond errors: what to print is the CLI's business.

/** The gateway a management command is about: the one holding the lock of the config in use. */
export interface Target {
  paths: Paths
  lockPath: string
  state: LockState
}

export type StaleLock = Extract<LockState, { state: 'stale' }>

/** The lock of the config of `configFlag` (else $XOPCBOT_CONFIG, else the default config) and what holds it. */
export function findGateway(configFlag: string | undefined, env: Env = process.env): Target {
  const paths = resolvePaths({ env, configFlag })
  const lockPath = lockPathFor(paths.locksDir, paths.configPath)
  return { paths, lockPath, state: inspectLock(lockPath) }
}

/**
 * The running gateway's lock, or null. A stale lock found on the way — its process gone, or its PID now running
 * another program — is removed and returned as `removedStale`; nothing is signalled. A lock whose PID cannot be
 * verified is an error: it is neither signalled nor removed.
 */
export function runningGateway(target: Target): { info: LockInfo; removedStale?: undefined } | { info: null; removedStale: StaleLock | null } {
  const { state } = target
  if (state.state === 'running') return { info: state.info }
  if (state.state === 'unverified') throw new CliError(unverifiedLockMessage(target.lockPath, state.info))
  if (state.state === 'stale') {
    removeStaleLock(target.lockPath, state.info)
    return { info: null, removedStale: state }
  }
  return { info: null, removedStale: null }
}

export type Health = { state: 'healthy' | 'draining' | 'unreachable'; uptime?: number }

/** What the gateway's /health answers: healthy, draining (stopping), or nothing within 2 s. */
export async function healthOf(info: Pick<LockInfo, 'host' | 'port'>): Promise<Health> {
  try {
    const response = await fetch(`${localUrl(info)}/health`, { signal: AbortSignal.timeout(2000) })
    const body = (await response.json()) as { status?: string; uptime?: number }
    return { state: response.ok ? 'healthy' : 'draining', ...(typeof body.uptime === 'number' ? { uptime: body.uptime } : {}) }
  } catch {
    return { state: 'unreachable' }
  }
}

/** Polls `url`/health until it answers 200; false after `timeoutMs`. */
export async function waitHealthy(url: string, timeoutMs: number): Promise<boolean> {
  const answers = () => fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok).catch(() => false)
  return (await pollUntil(answers, { timeoutMs, intervalMs: 100 })) !== null
}

/** The value of a flag in recorded arguments (`--name value` or `--name=value`). */
function flagValue(argv: string[], name: string): string | undefined {
  const index = argv.indexOf(name)
  if (index >= 0) return argv[index + 1]
  return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1)
}

/** The config keys a command reads to find the API token. */
export const TOKEN_NEEDS = ['gateway.auth']

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

/** How to start a gateway in the background: its command line, its directory, its environment. */
export interface StartPlan {
  execPath: string
  argv: string[]
  cwd: string
  env: Env
}

/**
 * The start of the gateway of `info` again: its recorded command line, in its directory, with this process's
 * environment. A kept token (see tokenForRestart) goes through the environment, never on the command line,
 * where other users could read it. The config file is pinned to the lock's (a `--config` in the arguments still
 * wins, and names the same file), so that the new process runs the config this command was about even when the
 * gateway found it through its own XOPCBOT_CONFIG.
 */
export function startPlan(info: Pick<LockInfo, 'execPath' | 'argv' | 'cwd' | 'configPath'>, token: string | null = null): StartPlan {
  return {
    execPath: info.execPath,
    // withoutOneShotArgs: also for a lock written by a version that recorded --force.
    argv: withoutOneShotArgs(token ? withoutTokenArgs(info.argv) : info.argv),
    cwd: info.cwd,
    env: { ...process.env, XOPCBOT_CONFIG: info.configPath, XOPCBOT_BACKGROUND: '1', ...(token ? { XOPCBOT_GATEWAY_TOKEN: token } : {}) },
  }
}

/**
 * Starts the gateway of `plan` in the background. Its stderr goes to a private file beside the lock (see
 * restart-report.ts): what it prints if it fails to start.
 */
export function spawnDetached(plan: StartPlan, lockPath: string): ChildProcess {
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

/**
 * Sends `sig` to the gateway of the lock if its PID is still verified to be it (SPEC §7); a PID that is gone
 * or runs another program gets nothing (false).
 */
export function signalVerified(lockPath: string, info: LockInfo, sig: NodeJS.Signals): boolean {
  let found
  try {
    found = signalGateway(info, sig)
  } catch (error) {
    throw new CliError(`Cannot send ${sig} to pid ${info.pid} (${(error as NodeJS.ErrnoException).code}); is it another user's process?`)
  }
  if (found.kind === 'unknown') throw new CliError(unverifiedLockMessage(lockPath, info))
  return found.kind === 'gateway'
}

/**
 * Stops the gateway of a lock: a graceful request (SIGTERM; on Windows the loopback control route), up to
 * `timeoutMs`, then SIGKILL. Returns how it ended. A killed gateway leaves a stale lock, which is removed.
 */
export async function stopGateway(lockPath: string, info: LockInfo, { force, timeoutMs }: { force: boolean; timeoutMs: number }): Promise<'stopped' | 'killed'> {
  let how: 'stopped' | 'killed' = 'stopped'
  if (force) {
    signalVerified(lockPath, info, 'SIGKILL')
    how = 'killed'
  } else if (process.platform === 'win32') {
    if (!(await sendControl(localUrl(info), info.nonce, 'stop'))) signalVerified(lockPath, info, 'SIGTERM')
  } else signalVerified(lockPath, info, 'SIGTERM')

  if (!(await waitForExit(info, force ? 5000 : timeoutMs))) {
    signalVerified(lockPath, info, 'SIGKILL')
    how = 'killed'
    if (!(await waitForExit(info, 5000))) throw new CliError(`Gateway (pid ${info.pid}) is still running after SIGKILL.`)
  }
  removeStaleLock(lockPath, info)
  return how
}

/** Asks the restart of the gateway of a lock: SIGUSR1, or on Windows the control route; false if it was not reached. */
export async function requestRestart(lockPath: string, info: LockInfo): Promise<boolean> {
  return process.platform === 'win32' ? sendControl(localUrl(info), info.nonce, 'restart') : signalVerified(lockPath, info, 'SIGUSR1')
}

/**
 * The loopback control client (see server/control.ts): asks the gateway on `url` to do `action`, authenticated
 * by the lock's nonce; false when it could not be reached or refused.
 */
export async function sendControl(url: string, nonce: string, action: 'stop' | 'restart' | 'reload-token'): Promise<boolean> {
  try {
    const response = await fetch(`${url}/_control/${action}`, { method: 'POST', headers: { [NONCE_HEADER]: nonce }, signal: AbortSignal.timeout(5000) })
    return response.ok
  } catch {
    return false
  }
}
