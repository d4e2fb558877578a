import { defineCommand } from 'citty'
import { z } from 'zod'
import type { UsageRow, UsageTotals } from '../agent/usage'
import { ExitCode } from '../errors'
import { apiClient } from './api-client'
import { configArg, flag, parseFlags, PathFlag } from './args'
import { table } from './output'

const args = {
  ...configArg,
  since: { type: 'string', description: 'Start: an ISO date or date-time, or a time ago such as 24h, 7d (default: 30d)', valueHint: 'when' },
  until: { type: 'string', description: 'End (default: now)', valueHint: 'when' },
  by: { type: 'string', description: 'Group by day, session, model or channel (default: day)', valueHint: 'group' },
  json: { type: 'boolean', description: 'Machine-readable output' },
} as const

interface UsageReport {
  since: string
  until: string
  group_by: string
  rows: UsageRow[]
  total: UsageTotals
}

const cost = (totals: UsageTotals) => (totals.cost === undefined ? '-' : `$${totals.cost.toFixed(4)}`)

/** `xopcbot usage`: tokens (and estimated cost) of the running gateway's turns, from GET /api/usage. */
export default defineCommand({
  meta: { name: 'usage', description: 'Tokens used by the agent, per day, session, model or channel' },
  args,
  async run({ args: given, rawArgs }) {
    const flags = parseFlags(args, given, rawArgs, {
      config: PathFlag.optional(),
      since: flag(z.string()).optional(),
      until: flag(z.string()).optional(),
      by: flag(z.enum(['day', 'session', 'model', 'channel'], 'must be day, session, model or channel')).optional(),
      json: z.boolean().optional(),
    })
    const query = new URLSearchParams()
    if (flags.since) query.set('since', flags.since)
    if (flags.until) query.set('until', flags.until)
    if (flags.by) query.set('group_by', flags.by)
    const report = await apiClient(flags.config)<UsageReport>('GET', `/api/usage${query.size ? `?${query}` : ''}`)
    if (flags.json) {
      console.log(JSON.stringify(report))
      return ExitCode.OK
    }
    console.log(`Usage from ${report.since} to ${report.until}, by ${report.group_by}`)
    if (report.rows.length === 0) console.log('No turns in this time.')
    else {
      const priced = report.total.cost !== undefined
      const row = (key: string, t: UsageTotals) => [key, String(t.turns), String(t.input_tokens), String(t.output_tokens), String(t.input_tokens + t.output_tokens), ...(priced ? [cost(t)] : [])]
      console.log(
        table([
          [report.group_by.toUpperCase(), 'TURNS', 'INPUT', 'OUTPUT', 'TOTAL', ...(priced ? ['COST'] : [])],
          ...report.rows.map((r) => row(r.key, r)),
          row('total', report.total),
        ]),
      )
    }
    return ExitCode.OK
  },
})
