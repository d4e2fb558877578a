import { defineCommand } from 'citty'
import { z } from 'zod'
import { ExitCode } from '../errors'
import { runDoctor, type Check } from '../ops/doctor'
import { serviceContext } from '../service'
import { IntFromText } from '../util/schemas'
import { configArg, parseFlags, PathFlag } from './args'

const args = {
  ...configArg,
  json: { type: 'boolean', description: 'Machine-readable output: {"ok":bool,"checks":[{"id","status","summary","fix"?}]}' },
  timeout: { type: 'string', description: 'Time limit of each network check, in ms (default: 5000)', valueHint: 'ms' },
} as const

const TimeoutFlag = IntFromText('must be a whole number of milliseconds from 100 to 60000').pipe(z.int().min(100, 'must be at least 100').max(60_000, 'must be at most 60000 (1 minute)'))

const SYMBOL = { ok: '✓', warn: '⚠', fail: '✗' } as const

/** One line per check, the fix indented under it; the names padded to one column. */
export function renderChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((check) => check.id.length))
  const lines: string[] = []
  for (const check of checks) {
    lines.push(`${check.skipped ? '–' : SYMBOL[check.status]} ${check.id.padEnd(width)}  ${check.summary}`)
    if (check.fix) lines.push(`  ${' '.repeat(width)}  → ${check.fix}`)
  }
  const failed = checks.filter((c) => c.status === 'fail').length
  const warned = checks.filter((c) => c.status === 'warn').length
  const count = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  lines.push('', failed || warned ? `${count(failed, 'problem')}, ${count(warned, 'warning')}` : 'Everything looks fine.')
  return lines.join('\n')
}

export default defineCommand({
  meta: {
    name: 'doctor',
    description: 'Check config, files, database, port, lock, service, provider, channels and clock, with a fix for each problem (example: xopcbot doctor --json)',
  },
  args,
  async run({ args: given, rawArgs }) {
    const flags = parseFlags(args, given, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional(), timeout: TimeoutFlag.optional() })
    const report = await runDoctor(
      {
        env: process.env,
        platform: process.platform,
        configFlag: flags.config,
        timeoutMs: flags.timeout ?? 5000,
        now: Date.now,
        uid: process.getuid?.() ?? null,
      },
      serviceContext(),
    )
    if (flags.json) console.log(JSON.stringify({ ok: report.ok, checks: report.checks.map(({ skipped: _, ...check }) => check) }))
    else console.log(renderChecks(report.checks))
    return report.ok ? ExitCode.OK : ExitCode.FAILURE
  },
})
