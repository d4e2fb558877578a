import { spawn } from 'node:child_process'
import { loadConfig } from '../config/load'
import { resolvePaths, type Paths } from '../config/paths'
import { applyGatewayOverrides } from '../config/settings'
import { inspectLock, lockPathFor, readLock, removeStaleLock, type LockInfo, type LockState } from '../lifecycle/lock'
import { isSameProcessAlive } from '../lifecycle/process'
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
 * way is removed and reported.
 */
export function runningOrReport(target: Target, line: string): LockInfo | null {
  if (target.state.state === 'running') return target.state.info
  if (target.state.state === 'stale') {
    removeStaleLock(target.lockPath, target.state.info)
    const pid = target.state.info?.pid
    console.log(`⚠️ Removed a stale lock${pid ? ` of pid ${pid}` : ''}: that process is gone.`)
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

/** The token a client must send: `--token` of the running gateway, else the environment, else the config. */
export function effectiveToken(paths: Paths, info: LockInfo | null): string | null {
  const index = info?.argv.indexOf('--token') ?? -1
  if (info && index >= 0 && info.argv[index + 1]) return info.argv[index + 1]!
  const inline = info?.argv.find((a) => a.startsWith('--token='))
  if (inline) return inline.slice('--token='.length)
  try {
    return applyGatewayOverrides(loadConfig(paths.configPath, process.env).config, process.env).gateway.auth.token
  } catch {
    return process.env.XOPCBOT_GATEWAY_TOKEN || null
  }
}

/** Starts a gateway in the background with a recorded command line. */
export function spawnDetached(info: Pick<LockInfo, 'execPath' | 'argv' | 'cwd'>) {
  const child = spawn(info.execPath, info.argv, { detached: true, stdio: 'ignore', cwd: info.cwd, env: process.env })
  child.unref()
  return child
}

/** Waits until the lock names a live process that `accept`s and that answers /health. */
export async function waitForGateway(lockPath: string, accept: (info: LockInfo) => boolean, timeoutMs: number): Promise<LockInfo | null> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const info = readLock(lockPath)
    if (info && accept(info) && isSameProcessAlive(info.pid, info.startTime)) {
      if ((await healthOf(info)).state === 'healthy') return info
    }
    await Bun.sleep(50)
  }
  return null
}

export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, `${s}s`].filter(Boolean).join(' ')
}
