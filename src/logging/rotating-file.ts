import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { ensurePrivateDir } from '../storage/private-files'

export interface RotatingFileOptions {
  maxBytes: number
  maxFiles: number
  /** how long lines may wait in memory before they are written (ms) */
  flushDelayMs?: number
}

/** At most this much waits in memory while the file cannot be written; the oldest lines go first. */
const MAX_PENDING_LINES = 10_000
const MAX_PENDING_BYTES = 4 * 1024 * 1024
const RETRY_MS = 1000

/**
 * An append-only log file rotated by size (`gateway.log` → `gateway.log.1` → … → `gateway.log.<maxFiles>`).
 * Lines are buffered briefly and written with one write call, so a busy server does not pay a syscall per
 * line; `flush()` writes synchronously and is called on shutdown.
 *
 * The file may fail at any time (removed directory, full or read-only disk) without touching anything else:
 * the writer then holds no descriptor at all (-1, never a number the kernel may have handed to a socket),
 * keeps a bounded buffer of the newest lines, and reopens the file — creating its directory again — when it can.
 */
export class RotatingFile {
  private fd = -1
  private size = 0
  private pending: string[] = []
  private pendingBytes = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private failing = false
  private closed = false
  private checkedAt = 0

  constructor(
    readonly path: string,
    private readonly options: RotatingFileOptions,
  ) {
    this.open()
  }

  write(line: string) {
    if (this.closed) return
    this.pending.push(line)
    // Characters, not bytes: a cheap lower bound that is good enough to decide when to write out.
    this.pendingBytes += line.length + 1
    if (this.pendingBytes >= 64 * 1024 && !this.failing) this.flush()
    else this.schedule(this.failing ? RETRY_MS : (this.options.flushDelayMs ?? 50))
  }

  flush() {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.pending.length === 0) return
    const lines = this.pending
    this.pending = []
    this.pendingBytes = 0
    let written = 0
    try {
      this.reopenIfGone()
      let chunk = ''
      let chunkBytes = 0
      let inChunk = 0
      for (const line of lines) {
        const bytes = Buffer.byteLength(line) + 1
        if (this.size + chunkBytes + bytes > this.options.maxBytes && this.size + chunkBytes > 0) {
          this.writeOut(chunk)
          written += inChunk
          chunk = ''
          chunkBytes = 0
          inChunk = 0
          this.rotate()
        }
        chunk += line + '\n'
        chunkBytes += bytes
        inChunk++
      }
      this.writeOut(chunk)
      if (this.failing) process.stderr.write(`log file ${this.path} is writable again\n`)
      this.failing = false
    } catch (error) {
      // A full or read-only disk must not take the gateway down: keep the newest lines and try again later.
      if (!this.failing) process.stderr.write(`cannot write the log file ${this.path} (${(error as Error).message}); retrying\n`)
      this.failing = true
      this.keep(lines.slice(written))
      this.schedule(RETRY_MS)
    }
  }

  close() {
    this.flush()
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.release()
  }

  private schedule(delayMs: number) {
    if (this.timer || this.closed) return
    this.timer = setTimeout(() => this.flush(), delayMs)
    this.timer.unref?.()
  }

  /** Puts unwritten lines back in front of what arrived meanwhile, within the bounds. */
  private keep(unwritten: string[]) {
    let lines = unwritten.length ? unwritten.concat(this.pending) : this.pending
    if (lines.length > MAX_PENDING_LINES) lines = lines.slice(-MAX_PENDING_LINES)
    let bytes = 0
    let from = lines.length
    while (from > 0 && bytes + Buffer.byteLength(lines[from - 1]!) + 1 <= MAX_PENDING_BYTES) bytes += Buffer.byteLength(lines[--from]!) + 1
    this.pending = from > 0 ? lines.slice(from) : lines
    this.pendingBytes = bytes
  }

  /** Opens (or reopens) the file, creating its directory; throws when it cannot. */
  private open() {
    ensurePrivateDir(dirname(this.path))
    const fd = openSync(this.path, 'a', 0o600)
    try {
      this.size = fstatSync(fd).size
    } catch (error) {
      closeSync(fd)
      throw error
    }
    this.fd = fd
  }

  /** Gives the descriptor back. Its number is forgotten first, so it can never be used or closed twice. */
  private release() {
    const fd = this.fd
    this.fd = -1
    if (fd >= 0) {
      try {
        closeSync(fd)
      } catch {}
    }
  }

  /**
   * Without a descriptor, opens the file again. With one, checks (at most once a second) that the file still
   * has a name — a removed log directory or file would otherwise swallow every line — and reopens it if not.
   */
  private reopenIfGone() {
    if (this.fd < 0) return this.open()
    const now = Date.now()
    if (now - this.checkedAt < RETRY_MS) return
    this.checkedAt = now
    if (fstatSync(this.fd).nlink === 0) {
      this.release()
      this.open()
    }
  }

  private writeOut(chunk: string) {
    if (!chunk) return
    const buffer = Buffer.from(chunk)
    let offset = 0
    while (offset < buffer.length) offset += writeSync(this.fd, buffer, offset)
    this.size += buffer.length
  }

  private rotate() {
    this.release()
    rmSync(`${this.path}.${this.options.maxFiles}`, { force: true })
    for (let index = this.options.maxFiles - 1; index >= 1; index--) {
      try {
        renameSync(`${this.path}.${index}`, `${this.path}.${index + 1}`)
      } catch {}
    }
    try {
      renameSync(this.path, `${this.path}.1`)
    } catch (error) {
      // A file that is gone needs no rotation; anything else (read-only directory) is a failure.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    this.open()
  }
}
