import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { canonicalConfigPath, configHash } from '../config/paths'
import { CliError } from '../errors'
import { ensurePrivateDir } from '../storage/private-files'
import { tempPathBeside, writeFileAtomic } from '../util/atomic-write'
import { identify, processStartTime } from './process'

/** What the lock records: who owns it, and what `status`, `stop` and `restart` need to find and restart it. */
export const LockInfo = z.object({
  pid: z.int().positive(),
  createdAt: z.string(),
  configPath: z.string(),
  /** see processStartTime(); null where the OS gives nothing better than the PID (and in older locks) */
  startTime: z.string().nullable().default(null),
  host: z.string(),
  port: z.int(),
  version: z.string(),
  /** the executable, and the arguments after it (the CLI entry file first when running from source); a --token value is masked */
  execPath: z.string(),
  argv: z.array(z.string()),
  cwd: z.string(),
  /** random per run: proves to the gateway's loopback control routes that a caller can read this lock */
  nonce: z.string().min(1),
  supervised: z.boolean(),
  allowSigusr1Restart: z.boolean(),
  respawn: z.boolean(),
  /** how many times this process restarted in place (XOPCBOT_NO_RESPAWN=1) */
  restarts: z.int().min(0),
})
export type LockInfo = z.infer<typeof LockInfo>

export class AlreadyRunningError extends CliError {
  override readonly name = 'AlreadyRunningError'
  constructor(readonly info: LockInfo) {
    super(`Gateway already running (pid ${info.pid}, port ${info.port})`)
  }
}

export function lockPathFor(locksDir: string, configPath: string): string {
  return join(locksDir, `gateway.${configHash(canonicalConfigPath(configPath))}.lock`)
}

function parseLock(text: string): LockInfo | null {
  try {
    const parsed = LockInfo.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

export function readLock(path: string): LockInfo | null {
  try {
    return parseLock(readFileSync(path, 'utf8'))
  } catch {
    return null
  }
}

export type LockState =
  | { state: 'none' }
  | { state: 'running'; info: LockInfo }
  /** the owner is gone, or its PID now runs another program (`other`): nothing may be signalled, the lock may go */
  | { state: 'stale'; info: LockInfo | null; other?: { by: 'start-time' | 'command-line'; command: string } }
  /** a process runs under the lock's PID, but it cannot be verified as the gateway: neither signalled nor reclaimed */
  | { state: 'unverified'; info: LockInfo }

/**
 * Whether the gateway that wrote the lock still runs. It is judged by its PID and start time, or, where no
 * start time exists, by its command line (see identify) — never by ports.
 */
export function inspectLock(path: string): LockState {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return { state: 'none' }
  }
  const info = parseLock(text)
  if (!info) return { state: 'stale', info: null }
  const occupant = identify(info)
  switch (occupant.kind) {
    case 'gateway':
      return { state: 'running', info }
    case 'gone':
      return { state: 'stale', info }
    case 'other':
      return { state: 'stale', info, other: { by: occupant.by, command: occupant.command } }
    case 'unknown':
      return { state: 'unverified', info }
  }
}

/** The sentence for a lock whose PID cannot be verified: nothing is signalled, and the user decides. */
export function unverifiedLockMessage(path: string, info: LockInfo): string {
  return `The lock names pid ${info.pid}, but that process cannot be verified as an xopcbot gateway (its command line cannot be read); nothing was signalled. If no gateway runs with this config, delete ${path}.`
}

/** The sentence for a stale lock whose PID now runs another program. */
export function otherProgramMessage(info: Pick<LockInfo, 'pid'>, other: NonNullable<Extract<LockState, { state: 'stale' }>['other']>): string {
  const why = other.by === 'start-time' ? 'is not the gateway that wrote it (it started at another time and runs' : 'is not an xopcbot gateway (it runs'
  return `The lock names pid ${info.pid}, but that process ${why} ${JSON.stringify(other.command)}); nothing was signalled.`
}

const TOKEN_MASK = '***'

/** The arguments as the lock records them: the value of `--token` is replaced by `***` (SPEC §7). */
export function maskTokenArgs(argv: string[]): string[] {
  return argv.map((arg, i) => (arg.startsWith('--token=') ? `--token=${TOKEN_MASK}` : argv[i - 1] === '--token' ? TOKEN_MASK : arg))
}

/** The arguments without `--token` and its value (a successor gets the token through its environment instead). */
export function withoutTokenArgs(argv: string[]): string[] {
  return argv.filter((arg, i) => arg !== '--token' && !arg.startsWith('--token=') && argv[i - 1] !== '--token')
}

/**
 * Flags that act once, on the start they are given to. A restart must not repeat them: `--force` would kill
 * whatever listens on the port by then, which need not be ours.
 */
const ONE_SHOT_FLAGS = new Set(['--force', '--no-force'])
/** The flags of `xopcbot gateway` whose value may be the next word (that word is a value, never a flag). */
const VALUE_FLAGS = new Set(['--port', '--host', '--token', '--token-file', '--tokenFile', '--config', '--service-marker', '--serviceMarker'])

/** The arguments a restart repeats: those of the start, without its one-shot flags (`--force`). */
export function withoutOneShotArgs(argv: string[]): string[] {
  return argv.filter((arg, i) => VALUE_FLAGS.has(argv[i - 1] ?? '') || !ONE_SHOT_FLAGS.has(arg.split('=')[0]!))
}

/** Whether the arguments give the token on the command line. */
export function hasTokenArg(argv: string[]): boolean {
  return argv.some((arg) => arg === '--token' || arg.startsWith('--token='))
}

/**
 * Where a running gateway keeps a token that no file holds — one given by `--token` or
 * `XOPCBOT_GATEWAY_TOKEN` — so that `status`, `token` and `restart` can use it (the lock records only `***`).
 * Private (0600) like the lock, tied to the lock by its nonce, and removed with it.
 */
export function tokenPathFor(lockPath: string): string {
  return `${lockPath.replace(/\.lock$/, '')}.token`
}

const KeptToken = z.object({ nonce: z.string(), token: z.string().min(1) })

function readKept(lockPath: string): z.infer<typeof KeptToken> | null {
  try {
    const parsed = KeptToken.safeParse(JSON.parse(readFileSync(tokenPathFor(lockPath), 'utf8')))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

/** The token the gateway of `info` keeps beside its lock, or null. */
export function readKeptToken(lockPath: string, info: Pick<LockInfo, 'nonce'>): string | null {
  const kept = readKept(lockPath)
  return kept && kept.nonce === info.nonce ? kept.token : null
}

/** Removes the kept token of the lock run `nonce` (any, when null). */
function removeKeptToken(lockPath: string, nonce: string | null) {
  const kept = readKept(lockPath)
  if (nonce === null || !kept || kept.nonce === nonce) rmSync(tokenPathFor(lockPath), { force: true })
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
  removeKeptToken(path, judged?.nonce ?? moved?.nonce ?? null)
  return true
}

const lockText = (info: LockInfo) => JSON.stringify(info, null, 2) + '\n'

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
    // Not writeFileAtomic: a new lock is linked into place, so that it never replaces one that exists.
    const temp = tempPathBeside(path)
    try {
      writeFileSync(temp, lockText(info), { mode: 0o600, flag: 'wx' })
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          linkSync(temp, path)
          return new GatewayLock(path, info)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        }
        const existing = inspectLock(path)
        if (existing.state === 'running') throw new AlreadyRunningError(existing.info)
        if (existing.state === 'unverified') throw new CliError(unverifiedLockMessage(path, existing.info))
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
    writeFileAtomic(this.path, lockText(this.info), { mode: 0o600 })
  }

  /**
   * Keeps `token` beside the lock (see tokenPathFor), or removes a token left there by an earlier run that
   * was killed. Written to a private temp file, then renamed into place.
   */
  keepToken(token: string | null) {
    const target = tokenPathFor(this.path)
    if (token === null) {
      rmSync(target, { force: true })
      return
    }
    writeFileAtomic(target, JSON.stringify({ nonce: this.info.nonce, token }) + '\n', { mode: 0o600 })
  }

  /** Deletes the lock (and the kept token) only if it is still ours. */
  release() {
    if (readLock(this.path)?.nonce === this.info.nonce) rmSync(this.path, { force: true })
    removeKeptToken(this.path, this.info.nonce)
  }
}
