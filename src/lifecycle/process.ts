import { readFileSync } from 'node:fs'

/** True when running as a `bun build --compile` executable (its modules live in Bun's virtual file system). */
export function isCompiled(main: string = Bun.main): boolean {
  return main.startsWith('/$bunfs/') || main.includes('~BUN')
}

/** The command that starts this program again: the binary, or the JS runtime plus the CLI entry file. */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, Bun.main]
}

let bootId: string | null | undefined

function linuxBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      bootId = null
    }
  }
  return bootId
}

/** State and start time of a Linux process from /proc/<pid>/stat, or null when there is no such process. */
function linuxStat(pid: number): { state: string; startTime: string | null } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = fields[19]
    return { state: fields[0] ?? '?', startTime: ticks ? `${linuxBootId() ?? 'boot'}:${ticks}` : null }
  } catch {
    return null
  }
}

/**
 * Something that tells this process apart from a later process that gets the same PID.
 * Linux: boot id + start time in clock ticks from /proc/<pid>/stat. macOS and other Unixes: the start time
 * `ps` reports (one-second resolution). Windows: null — only the PID is known, so a reused PID can be
 * mistaken for the owner there.
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

/** Is the process that recorded (`pid`, `startTime`) still the one running under that PID? */
export function isSameProcessAlive(pid: number, startTime: string | null): boolean {
  if (!pidExists(pid)) return false
  if (process.platform === 'linux') {
    // A zombie has exited; it only waits for its parent to collect the exit status.
    const stat = linuxStat(pid)
    if (!stat || stat.state === 'Z' || stat.state === 'X') return false
    return startTime === null || stat.startTime === startTime
  }
  if (startTime === null) return true
  const now = processStartTime(pid)
  return now === null ? process.platform === 'win32' : now === startTime
}

/** Waits until the process is gone, polling; true if it went within `timeoutMs`. */
export async function waitForExit(pid: number, startTime: string | null, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (isSameProcessAlive(pid, startTime)) {
    if (Date.now() >= deadline) return false
    await Bun.sleep(20)
  }
  return true
}
