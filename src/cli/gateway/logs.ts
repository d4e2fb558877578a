import { defineCommand } from 'citty'
import { readFileSync, statSync } from 'node:fs'
import { z } from 'zod'
import { dataDirOf, logFileOf, resolvePaths } from '../../config/paths'
import type { Config } from '../../config/schema'
import { ExitCode } from '../../errors'
import { levelAtLeast, LEVELS_ASCENDING, MinimumLevel, readLastLines, followFile, type LogEntry } from '../../logging/reader'
import { IntFromText } from '../../util/schemas'
import { configArg, parseFlags, PathFlag } from '../args'

const args = {
  ...configArg,
  lines: { type: 'string', description: 'How many lines (default: 50)', valueHint: 'n' },
  follow: { type: 'boolean', description: 'Keep printing new lines, like tail -f' },
  level: { type: 'string', description: `Lowest level shown: ${LEVELS_ASCENDING}`, valueHint: 'level' },
  json: { type: 'boolean', description: 'Print the JSON lines as written' },
} as const

const LinesFlag = IntFromText('must be a whole number from 1 to 100000').pipe(z.int().min(1, 'must be at least 1').max(100_000, 'must be at most 100000'))

function formatEntry(entry: LogEntry, json: boolean): string {
  if (json || !entry.entry) return entry.raw
  const { ts, level, tag, msg, ...fields } = entry.entry
  const time = typeof ts === 'string' ? ts.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : ''
  const pairs = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ')
  return `${time} ${String(level ?? 'info').toUpperCase().padEnd(5)} ${tag ? `[${tag}] ` : ''}${msg ?? ''}${pairs ? ' ' + pairs : ''}`
}

function statOrNull(file: string): { ino: number; size: number } | null {
  try {
    const { ino, size } = statSync(file)
    return { ino, size }
  } catch {
    return null
  }
}

/** The config keys `logs` reads. */
export const LOGS_NEEDS = ['dataDir', 'logging']

/** What the config schema gives for the keys `logs` reads when the config leaves them out. */
const DEFAULT_LOG_KEYS = { dataDir: null, logging: { file: null } } as Config

/**
 * Whether the config leaves out every key `logs` reads (or there is no config file), so that the log file is
 * the default one. Answered without the config schema, whose construction costs more than reading the log;
 * anything unusual (a file that is not a regular one, or not a JSON object) is left to loadConfig and its errors.
 */
function leavesLogKeysOut(configPath: string): boolean {
  try {
    if (!statSync(configPath).isFile()) return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
  }
  try {
    const text = readFileSync(configPath, 'utf8')
    const raw: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
    return raw !== null && typeof raw === 'object' && !Array.isArray(raw) && !LOGS_NEEDS.some((key) => Object.hasOwn(raw, key))
  } catch {
    return false
  }
}

/**
 * The log file of a config. Only dataDir and logging are read, so a ${VAR} elsewhere need not be set in this
 * shell; one there that is not set is a ConfigError naming it (exit 78), never a silent guess at another file.
 */
async function logFileFor(configPath: string): Promise<string> {
  if (leavesLogKeysOut(configPath)) return logFileOf(DEFAULT_LOG_KEYS, dataDirOf(DEFAULT_LOG_KEYS, configPath))
  const { loadConfig } = await import('../../config/load')
  const { config } = loadConfig(configPath, process.env, { needs: LOGS_NEEDS })
  return logFileOf(config, dataDirOf(config, configPath))
}

export default defineCommand({
  meta: { name: 'logs', description: 'Print the last log lines (default 50); --follow keeps printing new ones' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, {
      config: PathFlag.optional(),
      lines: LinesFlag.optional(),
      follow: z.boolean().optional(),
      level: MinimumLevel.optional(),
      json: z.boolean().optional(),
    })
    const file = await logFileFor(resolvePaths({ env: process.env, configFlag: flags.config }).configPath)
    const keep = (entry: LogEntry) => levelAtLeast(entry, flags.level)
    const print = (entry: LogEntry) => console.log(formatEntry(entry, flags.json ?? false))
    // Where the file ends now: --follow continues from here, whatever is written while the tail is printed.
    const end = flags.follow ? statOrNull(file) : null
    const tail = readLastLines(file, flags.lines ?? 50, keep)
    // One write for the whole tail: a console.log per line cost more than reading the lines.
    if (tail.length) console.log(tail.map((entry) => formatEntry(entry, flags.json ?? false)).join('\n'))
    if (!flags.follow) return ExitCode.OK
    const follower = followFile(file, (entry) => keep(entry) && print(entry), { from: end })
    const stop = () => follower.stop()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    await follower.done
    return ExitCode.OK
  },
})
