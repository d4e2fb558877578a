import { readFileSync, readlinkSync, realpathSync } from 'node:fs'
import { posix, win32 } from 'node:path'
import { linuxStat } from './proc-stat'

/**
 * A process's command line, read from the OS, and whether it shows the xopcbot gateway of a lock: how a process
 * is recognised where no start time can be compared (SPEC §7).
 */

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

export function expectedCommand(lock: { execPath: string; argv: string[]; cwd: string }): ExpectedCommand {
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

/** A command line for reports: the value of a `--token` is replaced by `***` (it would be a secret). */
export function maskTokenText(text: string): string {
  return text.replace(/(--token[= ])("[^"]*"|\S+)/g, '$1***')
}