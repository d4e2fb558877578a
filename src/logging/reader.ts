import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs'
import { z } from 'zod'
import { LINE_LEVELS } from './levels'

export interface LogEntry {
  /** the line as written */
  raw: string
  /** the parsed JSON line, or null for a line that is not JSON */
  entry: Record<string, unknown> | null
}

/** The line levels, least severe first ("trace, debug, info, warn, error, fatal"), as help and errors list them. */
export const LEVELS_ASCENDING = LINE_LEVELS.toReversed().join(', ')

/** The lowest level a log filter (`gateway logs --level`, `GET /api/logs?level=`) shows. */
export const MinimumLevel = z.enum(LINE_LEVELS, `must be one of ${LEVELS_ASCENDING}`)

const LEVEL_ORDER: Record<string, number> = Object.fromEntries(LINE_LEVELS.toReversed().map((level, rank) => [level, rank]))

export function levelAtLeast(entry: LogEntry, minimum: string | undefined): boolean {
  if (!minimum) return true
  const level = typeof entry.entry?.level === 'string' ? entry.entry.level : 'info'
  return (LEVEL_ORDER[level] ?? 2) >= (LEVEL_ORDER[minimum] ?? 0)
}

export function parseLine(raw: string): LogEntry {
  try {
    const entry = JSON.parse(raw)
    return { raw, entry: entry && typeof entry === 'object' && !Array.isArray(entry) ? entry : null }
  } catch {
    return { raw, entry: null }
  }
}

/**
 * Reads one file backwards in 64 KiB blocks and returns its complete lines, newest first, stopping as soon as
 * `want` lines pass `keep` — so the last lines of a 100 MB log cost a few blocks, not the whole file.
 */
function tailOfFile(path: string, want: number, keep: (e: LogEntry) => boolean, state: { done: boolean }, stop?: (e: LogEntry) => boolean): LogEntry[] {
  const found: LogEntry[] = []
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return found
  }
  try {
    const block = Buffer.alloc(64 * 1024)
    let position = fstatSync(fd).size
    let carry: Buffer = Buffer.alloc(0)
    while (position > 0 && found.length < want && !state.done) {
      const length = Math.min(block.length, position)
      position -= length
      readSync(fd, block, 0, length, position)
      let chunk = Buffer.concat([block.subarray(0, length), carry])
      let end = chunk.length
      // lastIndexOf finds each newline natively: a loop over the bytes in JS cost more than the rest of the read.
      // (Its offset must stay >= 0: a negative one counts from the end.)
      const newlineBefore = (index: number) => (index > 0 ? chunk.lastIndexOf(0x0a, index - 1) : -1)
      for (let i = newlineBefore(end); i >= 0 && found.length < want && !state.done; i = newlineBefore(i)) {
        const line = chunk.subarray(i + 1, end).toString('utf8')
        end = i
        if (line.trim()) {
          const entry = parseLine(line)
          if (stop?.(entry)) state.done = true
          else if (keep(entry)) found.push(entry)
        }
      }
      carry = Buffer.from(chunk.subarray(0, end))
      chunk = Buffer.alloc(0)
    }
    if (position === 0 && found.length < want && carry.length && !state.done) {
      const line = carry.toString('utf8')
      if (line.trim()) {
        const entry = parseLine(line)
        if (stop?.(entry)) state.done = true
        else if (keep(entry)) found.push(entry)
      }
    }
  } finally {
    closeSync(fd)
  }
  return found
}

/**
 * The last `lines` entries passing `keep`, oldest first, from the log file and then its rotated files.
 * Reading (backwards) ends early at the first entry for which `stop` is true — e.g. one older than a `since`.
 */
export function readLastLines(path: string, lines: number, keep: (e: LogEntry) => boolean = () => true, stop?: (e: LogEntry) => boolean): LogEntry[] {
  const newestFirst: LogEntry[] = []
  const state = { done: false }
  for (let index = 0; newestFirst.length < lines && !state.done; index++) {
    const file = index === 0 ? path : `${path}.${index}`
    if (index > 0 && !existsSync(file)) break
    newestFirst.push(...tailOfFile(file, lines - newestFirst.length, keep, state, stop))
  }
  return newestFirst.reverse()
}

/**
 * Follows a log file like `tail -F`: polls for new bytes, and when the file is rotated (a new inode, or it
 * shrank) finishes the old one and continues with the new one from its start. `stop()` ends it.
 */
export function followFile(
  path: string,
  onLine: (entry: LogEntry) => void,
  { intervalMs = 200, from }: { intervalMs?: number; from?: { ino: number; size: number } | null } = {},
): { stop: () => void; done: Promise<void> } {
  let fd: number | null = null
  let inode = -1
  let position = 0
  let partial = ''
  let stopped = false

  const open = (fromEnd: boolean) => {
    try {
      fd = openSync(path, 'r')
      const stat = fstatSync(fd)
      inode = stat.ino
      // `from` is where the caller stopped reading: continue exactly there, so no line falls in between.
      position = !fromEnd ? 0 : from ? (from.ino === stat.ino ? Math.min(from.size, stat.size) : 0) : stat.size
      partial = ''
    } catch {
      fd = null
    }
  }
  const drain = () => {
    if (fd === null) return
    const block = Buffer.alloc(64 * 1024)
    for (;;) {
      const read = readSync(fd, block, 0, block.length, position)
      if (read <= 0) break
      position += read
      partial += block.subarray(0, read).toString('utf8')
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      for (const line of parts) if (line.trim()) onLine(parseLine(line))
    }
  }
  open(true)
  const done = (async () => {
    while (!stopped) {
      await Bun.sleep(intervalMs)
      drain()
      let current: { ino: number; size: number } | null = null
      try {
        current = statSync(path)
      } catch {}
      if (current && (current.ino !== inode || current.size < position)) {
        drain()
        if (fd !== null) closeSync(fd)
        open(false)
        drain()
      } else if (!current && fd === null) open(false)
    }
    if (fd !== null) closeSync(fd)
  })()
  return { stop: () => void (stopped = true), done }
}
