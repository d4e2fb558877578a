import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { canonicalConfigPath, configHash } from '../config/paths'
import { CliError } from '../errors'
import { ensurePrivateDir } from '../storage/files'
import { isSameProcessAlive, processStartTime } from './process'

/** What the lock records: who owns it, and what `status`, `stop` and `restart` need to find and restart it. */
export interface LockInfo {
  pid: number
  createdAt: string
  configPath: string
  /** see processStartTime(); null where the OS gives nothing better than the PID */
  startTime: string | null
  host: string
  port: number
  version: string
  /** the executable, and the arguments after it (the CLI entry file first when running from source) */
  execPath: string
  argv: string[]
  cwd: string
  /** random per run: proves to the gateway's loopback control routes that a caller can read this lock */
  nonce: string
  supervised: boolean
  allowSigusr1Restart: boolean
  respawn: boolean
  /** how many times this process restarted in place (XOPCBOT_NO_RESPAWN=1) */
  restarts: number
}

export class AlreadyRunningError extends CliError {
  override readonly name = 'AlreadyRunningError'
  constructor(readonly info: LockInfo) {
    super(`Gateway already running (pid ${info.pid}, port ${info.port})`)
  }
}

export function lockPathFor(locksDir: string, configPath: string): string {
  return join(locksDir, `gateway.${configHash(canonicalConfigPath(configPath))}.lock`)
}

export function readLock(path: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo
    return typeof info.pid === 'number' && typeof info.nonce === 'string' ? info : null
  } catch {
    return null
  }
}

export type LockState = { state: 'none' } | { state: 'running'; info: LockInfo } | { state: 'stale'; info: LockInfo | null }

/** Whether a live process owns the lock. A live owner is judged by its PID and start time only — never by ports. */
export function inspectLock(path: string): LockState {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return { state: 'none' }
  }
  let info: LockInfo | null = null
  try {
    info = JSON.parse(text) as LockInfo
  } catch {}
  if (!info || typeof info.pid !== 'number') return { state: 'stale', info: null }
  return isSameProcessAlive(info.pid, info.startTime ?? null) ? { state: 'running', info } : { state: 'stale', info }
}

/**
 * Removes a stale lock atomically: the file is renamed away first, and only deleted if what was moved is the
 * very lock that was judged stale. If another process replaced it in between, its lock is put back.
 */
export function removeStaleLock(path: string, judged: LockInfo | null): boolean {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    renameSync(path, aside)
  } catch {
    return false
  }
  const moved = readLock(aside)
  if (judged && moved && moved.nonce !== judged.nonce) {
    try {
      linkSync(aside, path)
    } catch {}
    rmSync(aside, { force: true })
    return false
  }
  rmSync(aside, { force: true })
  return true
}

function writePrivateTemp(path: string, info: LockInfo): string {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(temp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  return temp
}

/** The lock of one config, held by this process (SPEC §5.1). */
export class GatewayLock {
  private constructor(
    readonly path: string,
    private info: LockInfo,
  ) {}

  get current(): LockInfo {
    return this.info
  }

  /**
   * Atomic acquisition: the complete lock is written to a temp file and hard-linked into place, which fails
   * if a lock exists — so of two gateways started at the same instant exactly one wins. A stale lock is
   * removed (see removeStaleLock) and the link is tried again.
   */
  static acquire(path: string, fields: Omit<LockInfo, 'pid' | 'createdAt' | 'startTime' | 'nonce'>): GatewayLock {
    ensurePrivateDir(dirname(path))
    const info: LockInfo = {
      pid: process.pid,
      createdAt: new Date().toISOString(),
      startTime: processStartTime(process.pid),
      nonce: randomBytes(16).toString('hex'),
      ...fields,
    }
    const temp = writePrivateTemp(path, info)
    try {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          linkSync(temp, path)
          return new GatewayLock(path, info)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        }
        const existing = inspectLock(path)
        if (existing.state === 'running') throw new AlreadyRunningError(existing.info)
        if (existing.state === 'stale') removeStaleLock(path, existing.info)
      }
      throw new CliError(`Could not take the gateway lock ${path}; another gateway keeps starting with this config.`)
    } finally {
      rmSync(temp, { force: true })
    }
  }

  /** Rewrites the lock (e.g. a new port after an in-process restart), if it is still ours. */
  update(fields: Partial<Omit<LockInfo, 'pid' | 'nonce' | 'startTime'>>) {
    if (readLock(this.path)?.nonce !== this.info.nonce) return
    this.info = { ...this.info, ...fields }
    const temp = writePrivateTemp(this.path, this.info)
    renameSync(temp, this.path)
  }

  /** Deletes the lock only if it is still ours. */
  release() {
    if (readLock(this.path)?.nonce === this.info.nonce) rmSync(this.path, { force: true })
  }
}
