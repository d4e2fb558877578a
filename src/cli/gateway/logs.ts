import { defineCommand } from 'citty'
import { statSync } from 'node:fs'
import { z } from 'zod'
import { loadConfig } from '../../config/load'
import { dataDirOf, logFileOf, resolvePaths } from '../../config/paths'
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

const LinesFlag = IntFromText().pipe(z.int().min(1, 'must be at least 1').max(100_000, 'must be at most 100000'))

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

/**
 * The log file of a config. Only dataDir and logging are read, so a ${VAR} elsewhere need not be set in this
 * shell; one there that is not set is a ConfigError naming it (exit 78), never a silent guess at another file.
 */
function logFileFor(configPath: string): string {
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
    const file = logFileFor(resolvePaths({ env: process.env, configFlag: flags.config }).configPath)
    const keep = (entry: LogEntry) => levelAtLeast(entry, flags.level)
    const print = (entry: LogEntry) => console.log(formatEntry(entry, flags.json ?? false))
    // Where the file ends now: --follow continues from here, whatever is written while the tail is printed.
    const end = flags.follow ? statOrNull(file) : null
    for (const entry of readLastLines(file, flags.lines ?? 50, keep)) print(entry)
    if (!flags.follow) return ExitCode.OK
    const follower = followFile(file, (entry) => keep(entry) && print(entry), { from: end })
    const stop = () => follower.stop()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    await follower.done
    return ExitCode.OK
  },
})
