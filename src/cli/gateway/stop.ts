import { defineCommand } from 'citty'
import { z } from 'zod'
import { ExitCode } from '../../errors'
import { findGateway, stopGateway } from '../../lifecycle/control'
import { IntFromText } from '../../util/schemas'
import { configArg, parseFlags, PathFlag } from '../args'
import { runningOrReport } from './running'

const args = {
  ...configArg,
  force: { type: 'boolean', description: 'Kill it now (SIGKILL) instead of a graceful stop' },
  timeout: { type: 'string', description: 'How long to wait for a graceful stop before SIGKILL, in ms (default: 5000)', valueHint: 'ms' },
} as const

export const TimeoutFlag = IntFromText('must be a whole number of milliseconds from 0 to 600000').pipe(z.int().min(0).max(600_000, 'must be at most 600000 (10 minutes)'))

export default defineCommand({
  meta: { name: 'stop', description: 'Stop the gateway: SIGTERM, wait up to --timeout ms, then SIGKILL; --force kills at once' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), force: z.boolean().optional(), timeout: TimeoutFlag.optional() })
    const target = findGateway(flags.config)
    const info = runningOrReport(target, 'ℹ️ Gateway is not running')
    if (!info) return ExitCode.OK
    const timeoutMs = flags.timeout ?? 5000
    const how = await stopGateway(target.lockPath, info, { force: flags.force ?? false, timeoutMs })
    if (how === 'stopped') console.log(`✅ Gateway stopped (pid ${info.pid})`)
    else if (flags.force) console.log(`✅ Gateway killed (pid ${info.pid}, SIGKILL)`)
    else console.log(`⚠️ Gateway did not stop within ${timeoutMs} ms; killed it with SIGKILL (pid ${info.pid})`)
    return ExitCode.OK
  },
})
