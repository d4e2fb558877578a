import { readFileSync, readlinkSync, realpathSync } from 'node:fs'
import { posix, win32 } from 'node:path'
import { waitUntil } from '../util/timeout'

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
function linuxStat(pid: number): { state: string; startTime: string | null; name: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = fields[19]
    return { state: fields[0] ?? '?', startTime: ticks ? `${linuxBootId() ?? 'boot'}:${ticks}` : null, name }
  } catch {
    return null
  }
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

/** A process's command line as the OS shows it: its words (Linux) or one string (ps, Win32_Process); its executable where known. */
export interface SeenCommand {
  exe: string | null
  words: string[] | null
  text: string
}

function runQuietly(command: string[], env: Record<string, string | undefined>): string | null {
  try {
    const result = Bun.spawnSync(command, { stdout: 'pipe', stderr: 'ignore', stdin: 'ignore', env })
    return result.exitCode === 0 ? result.stdout.toString() : null
  } catch {
    return null
  }
}

/**
 * Reads a process's command line: /proc/<pid>/cmdline and /proc/<pid>/exe on Linux, `ps -o command=` on macOS
 * and other Unixes, Win32_Process (PowerShell, its script given as one argument; the PID is an integer) on
 * Windows. Null when nothing can be read.
 */
export function readCommandLine(pid: number, platform: NodeJS.Platform = process.platform): SeenCommand | null {
  if (!Number.isInteger(pid) || pid <= 0) return null
  if (platform === 'linux') {
    let words: string[]
    try {
      words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    } catch {
      return null
    }
    if (words.at(-1) === '') words.pop()
    let exe: string | null = null
    try {
      exe = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '')
    } catch {}
    // Kernel threads have no command line: show their name as ps does.
    const text = words.join(' ') || `[${linuxStat(pid)?.name ?? '?'}]`
    return { exe, words, text }
  }
  if (platform === 'win32') {
    const script = `$p = Get-CimInstance -ClassName Win32_Process -Filter 'ProcessId=${pid}'; if ($p) { [Console]::Out.WriteLine($p.ExecutablePath); [Console]::Out.WriteLine($p.CommandLine) }`
    const out = runQuietly(['powershell.exe', '-NoProfile', '-NonInteractive', '-Command', script], process.env)
    const [exe = '', text = ''] = (out ?? '').split(/\r?\n/)
    return exe || text ? { exe: exe || null, words: null, text } : null
  }
  const text = runQuietly(['ps', '-o', 'command=', '-p', String(pid)], { LC_ALL: 'C', PATH: '/bin:/usr/bin' })?.trim()
  return text ? { exe: null, words: null, text } : null
}

/** What a lock's command line must show: the executable, the CLI entry file when running from source, and `gateway`. */
export interface ExpectedCommand {
  /** the lock's execPath, and the path it resolves to */
  execPaths: string[]
  /** the CLI entry file (source runs), or null for a compiled binary */
  entry: string | null
  cwd: string
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

export function expectedCommand(lock: Pick<GatewayIdentity, 'execPath' | 'argv' | 'cwd'>): ExpectedCommand {
  const first = lock.argv[0]
  return {
    execPaths: [...new Set([lock.execPath, realpathOr(lock.execPath)])].filter(Boolean),
    entry: first && first !== 'gateway' && !first.startsWith('-') ? first : null,
    cwd: lock.cwd,
  }
}

/**
 * Does the command line show the xopcbot gateway the lock describes? The executable must be the lock's (by
 * /proc/<pid>/exe or Win32 ExecutablePath where known, else by the first word, resolved against the lock's
 * working directory; a bare name found on PATH counts by its basename), the entry file must appear when the
 * gateway runs from source, and so must the word `gateway`.
 */
export function commandShowsGateway(seen: SeenCommand, expected: ExpectedCommand, platform: NodeJS.Platform = process.platform): boolean {
  const paths = platform === 'win32' ? win32 : posix
  const fold = (p: string) => (platform === 'win32' || platform === 'darwin' ? p.toLowerCase() : p)
  const resolveWord = (word: string) => fold(paths.resolve(expected.cwd, word.replace(/^"(.*)"$/, '$1')))
  const execPaths = expected.execPaths.filter(Boolean).map((p) => fold(paths.resolve(p)))
  if (!execPaths.length) return false
  const bareNames = new Set(execPaths.map((p) => paths.basename(p).replace(/\.exe$/, '')))

  // Words as the OS gives them; a ps/Win32 string is split at spaces (a path with spaces is still found whole below).
  const words = seen.words ?? seen.text.match(/"[^"]*"|\S+/g) ?? []
  const first = words[0] ?? ''
  const foldedText = fold(seen.text)
  const exeShown =
    (seen.exe !== null && execPaths.includes(fold(paths.resolve(seen.exe)))) ||
    (first !== '' && execPaths.includes(resolveWord(first))) ||
    (first !== '' && !/[\\/]/.test(first) && bareNames.has(fold(first).replace(/\.exe$/, ''))) ||
    (seen.words === null && execPaths.some((p) => foldedText.startsWith(p) || foldedText.startsWith(`"${p}"`)))
  if (!exeShown) return false

  if (expected.entry !== null) {
    const entry = fold(paths.resolve(expected.cwd, expected.entry))
    const entryShown = words.slice(1).some((word) => resolveWord(word) === entry) || (seen.words === null && foldedText.includes(entry))
    if (!entryShown) return false
  }
  return words.slice(1).some((word) => word === 'gateway')
}

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

/** A command line for reports: the value of a `--token` is replaced by `***` (it would be a secret). */
export function maskTokenText(text: string): string {
  return text.replace(/(--token[= ])("[^"]*"|\S+)/g, '$1***')
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
