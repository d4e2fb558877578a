import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { ensurePrivateDir } from '../storage/files'

export interface RotatingFileOptions {
  maxBytes: number
  maxFiles: number
  /** how long lines may wait in memory before they are written (ms) */
  flushDelayMs?: number
}

/**
 * An append-only log file rotated by size (`gateway.log` → `gateway.log.1` → … → `gateway.log.<maxFiles>`).
 * Lines are buffered briefly and written with one write call, so a busy server does not pay a syscall per
 * line; `flush()` writes synchronously and is called on shutdown.
 */
export class RotatingFile {
  private fd: number
  private size: number
  private pending: string[] = []
  private pendingBytes = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private failing = false

  constructor(
    readonly path: string,
    private readonly options: RotatingFileOptions,
  ) {
    ensurePrivateDir(dirname(path))
    this.fd = openSync(path, 'a', 0o600)
    this.size = fstatSync(this.fd).size
  }

  write(line: string) {
    this.pending.push(line)
    this.pendingBytes += Buffer.byteLength(line) + 1
    if (this.pendingBytes >= 64 * 1024) this.flush()
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.flushDelayMs ?? 50)
      this.timer.unref?.()
    }
  }

  flush() {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.fd < 0 || this.pending.length === 0) return
    const lines = this.pending
    this.pending = []
    this.pendingBytes = 0
    let written = 0
    try {
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
      this.pending = lines.slice(written).slice(-10_000)
      this.pendingBytes = this.pending.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0)
      if (!this.timer) {
        this.timer = setTimeout(() => this.flush(), 1000)
        this.timer.unref?.()
      }
    }
  }

  close() {
    this.flush()
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }

  private writeOut(chunk: string) {
    if (!chunk) return
    const buffer = Buffer.from(chunk)
    let offset = 0
    while (offset < buffer.length) offset += writeSync(this.fd, buffer, offset)
    this.size += buffer.length
  }

  private rotate() {
    try {
      closeSync(this.fd)
    } catch {}
    rmSync(`${this.path}.${this.options.maxFiles}`, { force: true })
    for (let index = this.options.maxFiles - 1; index >= 1; index--) {
      try {
        renameSync(`${this.path}.${index}`, `${this.path}.${index + 1}`)
      } catch {}
    }
    renameSync(this.path, `${this.path}.1`)
    this.fd = openSync(this.path, 'a', 0o600)
    this.size = 0
  }
}
