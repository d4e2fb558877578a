import { createConsola, LogLevels, type ConsolaInstance, type ConsolaReporter, type LogObject } from 'consola/core'
import type { LoggingConfig } from '../config/schema'
import { Redactor } from './redact'
import { RotatingFile } from './rotating-file'
import { LogTap } from './tap'

export type Logger = ConsolaInstance
export type LogLevelName = LoggingConfig['level']

/** Tag of the per-request log lines: written to the file, shown on the console only at debug level. */
export const HTTP_TAG = 'http'

const LEVEL_NAMES: Record<string, string> = {
  fatal: 'fatal',
  error: 'error',
  fail: 'error',
  warn: 'warn',
  debug: 'debug',
  trace: 'trace',
  verbose: 'trace',
}
const levelNameOf = (type: string) => LEVEL_NAMES[type] ?? 'info'

export const levelNumber = (level: LogLevelName): number => LogLevels[level]

/** Splits consola's arguments into a message and fields: strings (and numbers) form `msg`, objects are merged. */
function messageAndFields(args: unknown[]): { msg: string; fields: Record<string, unknown> } {
  // The usual call, log.info('text', {fields}): no copies.
  if (args.length <= 2 && typeof args[0] === 'string') {
    const second = args[1]
    if (second === undefined) return { msg: args[0], fields: {} }
    if (second !== null && typeof second === 'object' && !Array.isArray(second) && !(second instanceof Error)) return { msg: args[0], fields: second as Record<string, unknown> }
  }
  const words: string[] = []
  const fields: Record<string, unknown> = {}
  for (const arg of args) {
    if (arg instanceof Error) fields.err = arg
    else if (arg !== null && typeof arg === 'object' && !Array.isArray(arg)) Object.assign(fields, arg)
    else words.push(String(arg))
  }
  return { msg: words.join(' '), fields }
}

const RESERVED = new Set(['ts', 'level', 'tag', 'msg'])

/**
 * JSON lines `{ts, level, tag, msg, …fields}` (SPEC §5.5). This runs for every request (the request log line),
 * so the line is built in one pass — fields redacted as they are copied, the timestamp formatted once per
 * millisecond — instead of through intermediate copies.
 */
export function jsonLineReporter(file: RotatingFile, redactor: Redactor, tap?: LogTap): ConsolaReporter {
  let lastMs = NaN
  let lastIso = ''
  return {
    log(logObj: LogObject) {
      const { msg, fields } = messageAndFields(logObj.args)
      const ms = logObj.date.getTime()
      if (ms !== lastMs) {
        lastMs = ms
        lastIso = logObj.date.toISOString()
      }
      const line: Record<string, unknown> = { ts: lastIso, level: levelNameOf(logObj.type), tag: logObj.tag || 'gateway', msg: redactor.text(msg) }
      for (const key in fields) if (!RESERVED.has(key)) line[key] = redactor.field(key, fields[key])
      const raw = JSON.stringify(line)
      file.write(raw)
      if (tap?.listening) tap.emit({ raw, entry: line })
    },
  }
}

function formatField(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value
  if (value !== null && typeof value === 'object' && 'message' in value && 'name' in value) return JSON.stringify(`${value.name}: ${value.message}`)
  return JSON.stringify(value) ?? String(value)
}

/** Human-readable lines on stderr: `12:00:01 WARN [telegram] message key=value`. */
export function consoleReporter(redactor: Redactor, level: () => number, stream: NodeJS.WritableStream = process.stderr): ConsolaReporter {
  return {
    log(logObj: LogObject) {
      if (logObj.tag === HTTP_TAG && level() < LogLevels.debug) return
      const { msg, fields } = messageAndFields(logObj.args)
      const safe = redactor.value(fields) as Record<string, unknown>
      const pairs = Object.entries(safe)
        .map(([key, value]) => `${key}=${formatField(value)}`)
        .join(' ')
      const time = logObj.date.toTimeString().slice(0, 8)
      const tag = logObj.tag ? `[${logObj.tag}] ` : ''
      // A closed terminal (EIO) must not make every log call throw: the log file still gets the line.
      try {
        stream.write(`${time} ${levelNameOf(logObj.type).toUpperCase().padEnd(5)} ${tag}${redactor.text(msg)}${pairs ? ' ' + pairs : ''}\n`)
      } catch {}
    },
  }
}

export interface GatewayLogger {
  log: Logger
  redactor: Redactor
  file: RotatingFile | null
  /** the file's lines as they are written (live log readers) */
  tap: LogTap
  /** Changes the level of this logger and of every logger made from it (withTag), at once (a config reload). */
  setLevel(level: LogLevelName): void
  close(): void
}

/**
 * consola copies the level into every `withTag()` child, so a changed level would reach none of them: here the
 * whole family reads one shared cell instead (a property read, as before).
 */
function shareLevel(log: Logger, cell: { level: number }): Logger {
  Object.defineProperty(log, 'level', { get: () => cell.level, set: (level: number) => void (cell.level = level), configurable: true })
  const create = log.create.bind(log)
  log.create = (options) => shareLevel(create(options), cell)
  return log
}

export interface LoggerOptions {
  level: LogLevelName
  file?: { path: string; maxBytes: number; maxFiles: number } | null
  console?: boolean
  /** the one redactor of the gateway (shared with the API's error envelope and the stored records) */
  redactor?: Redactor
}

/**
 * The gateway's logger: consola in front, a JSON-lines file and the console behind it. `throttle: 0`
 * because consola's default throttle drops repeated identical lines, which a log file must not do.
 */
export function createLogger(options: LoggerOptions): GatewayLogger {
  const redactor = options.redactor ?? new Redactor()
  const file = options.file ? new RotatingFile(options.file.path, { maxBytes: options.file.maxBytes, maxFiles: options.file.maxFiles }) : null
  const level = { level: levelNumber(options.level) }
  const log: Logger = shareLevel(createConsola({ level: level.level, throttle: 0, reporters: [] }), level)
  const reporters: ConsolaReporter[] = []
  if (options.console !== false) reporters.push(consoleReporter(redactor, () => log.level))
  const tap = new LogTap()
  if (file) reporters.push(jsonLineReporter(file, redactor, tap))
  log.setReporters(reporters)
  return {
    log,
    redactor,
    file,
    tap,
    setLevel: (name) => void (level.level = levelNumber(name)),
    close: () => file?.close(),
  }
}
