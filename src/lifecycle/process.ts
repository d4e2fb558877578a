import { commandShowsGateway, expectedCommand, maskTokenText, readCommandLine } from './command-line'
import { linuxStat } from './proc-stat'
import { waitUntil } from '../util/timeout'

export { commandShowsGateway, expectedCommand, maskTokenText, readCommandLine, type ExpectedCommand, type SeenCommand } from './command-line'

/** True when running as a `bun build --compile` executable (its modules live in Bun's virtual file system). */
export function isCompiled(main: string = Bun.main): boolean {
  return main.startsWith('/$bunfs/') || main.includes('~BUN')
}

/** The command that starts this program again: the binary, or the JS runtime plus the CLI entry file. */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, Bun.main]
}


/**
 * Something that tells this process apart from a later process that gets the same PID.
 * Linux: boot id + start time in clock ticks from /proc/<pid>/stat. macOS and other Unixes: the start time
 * `ps` reports (one-second resolution). Windows: null — there the process's command line identifies the
 * gateway instead (see identify).
 */
export function processStartTime(pid: number, platform: NodeJS.Platform = process.platform): string | null {
  if (platform === 'linux') return linuxStat(pid)?.startTime ?? null
  if (platform === 'win32') return null
  try {
    const ps = Bun.spawnSync(['ps', '-o', 'lstart=', '-p', String(pid)], { stdout: 'pipe', stderr: 'ignore', env: { LC_ALL: 'C', PATH: '/bin:/usr/bin' } })
    const text = ps.stdout.toString().trim()
    return ps.exitCode === 0 && text ? text : null
  } catch {
    return null
  }
}

export function pidExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Some process runs under `pid` (a zombie, which has exited and only waits to be collected, does not count). */
export function isRunning(pid: number): boolean {
  if (!pidExists(pid)) return false
  if (process.platform !== 'linux') return true
  const stat = linuxStat(pid)
  return !!stat && stat.state !== 'Z' && stat.state !== 'X'
}

/**
 * Is the process that recorded (`pid`, `startTime`) still the one running under that PID? False when no start
 * time can be compared (see identify for a lock, which falls back to the command line).
 */
export function isSameProcessAlive(pid: number, startTime: string | null): boolean {
  if (startTime === null || !isRunning(pid)) return false
  return processStartTime(pid) === startTime
}

/** What a lock says about the process that wrote it: enough to tell it from another program that later got its PID. */
export interface GatewayIdentity {
  pid: number
  startTime: string | null
  /** the executable, and the arguments after it (the CLI entry file first when running from source) */
  execPath: string
  argv: string[]
  cwd: string
}

/**
 * What runs under a lock's PID now (SPEC §7):
 * - `gateway`: the process that wrote the lock — its start time matches, or, where no start time was recorded
 *   or can be read, its command line shows the xopcbot executable;
 * - `gone`: no such process (or a zombie);
 * - `other`: another program has the PID; `command` is its command line, `by` what told them apart;
 * - `unknown`: a process runs there, but nothing about it can be read: it is not verified.
 */
export type Occupant = { kind: 'gateway' } | { kind: 'gone' } | { kind: 'other'; by: 'start-time' | 'command-line'; command: string } | { kind: 'unknown' }


/** Who runs under the PID of a lock now (see Occupant). */
export function identify(lock: GatewayIdentity): Occupant {
  const { pid } = lock
  if (!pidExists(pid)) return { kind: 'gone' }
  let now: string | null
  if (process.platform === 'linux') {
    const stat = linuxStat(pid)
    // Unreadable: it exited meanwhile (or is another user's process, hidden by hidepid) — not ours either way.
    if (!stat || stat.state === 'Z' || stat.state === 'X') return { kind: 'gone' }
    now = stat.startTime
  } else now = lock.startTime === null ? null : processStartTime(pid)
  const describe = () => maskTokenText(readCommandLine(pid)?.text ?? '(unknown command)')
  if (lock.startTime !== null && now !== null) return now === lock.startTime ? { kind: 'gateway' } : { kind: 'other', by: 'start-time', command: describe() }

  const seen = readCommandLine(pid)
  if (!seen) return pidExists(pid) ? { kind: 'unknown' } : { kind: 'gone' }
  return commandShowsGateway(seen, expectedCommand(lock)) ? { kind: 'gateway' } : { kind: 'other', by: 'command-line', command: maskTokenText(seen.text) }
}


/**
 * Sends `signal` to the gateway of a lock only if that PID is verified to be it (SPEC §7). Returns what runs
 * under the PID; nothing is sent unless that is `gateway`.
 */
export function signalGateway(lock: GatewayIdentity, signal: NodeJS.Signals): Occupant {
  const occupant = identify(lock)
  if (occupant.kind !== 'gateway') return occupant
  try {
    process.kill(lock.pid, signal)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return { kind: 'gone' }
    throw error
  }
  return occupant
}

/**
 * Waits until the gateway of a lock is gone (or its PID runs another program), polling; true if that happened
 * within `timeoutMs`. A PID that cannot be verified either way counts as still there.
 */
export function waitForExit(lock: GatewayIdentity, timeoutMs: number): Promise<boolean> {
  return waitUntil(() => {
    const { kind } = identify(lock)
    return kind === 'gone' || kind === 'other'
  }, timeoutMs)
}

/** Waits until nothing runs under `pid` (for a process found by its port, which has no lock to compare). */
export function waitForPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  return waitUntil(() => !isRunning(pid), timeoutMs)
}
