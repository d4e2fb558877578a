import { defineCommand } from 'citty'
import { z } from 'zod'
import { CliError, ExitCode } from '../errors'
import { removeStaleLock, unverifiedLockMessage, type LockInfo } from '../lifecycle/lock'
import { signalGateway, waitForExit } from '../lifecycle/process'
import { sendControl } from '../server/control'
import { IntFromText } from '../util/schemas'
import { configArg, parseFlags, PathFlag } from './args'
import { locate, localUrl, runningOrReport } from './target'

const args = {
  ...configArg,
  force: { type: 'boolean', description: 'Kill it now (SIGKILL) instead of a graceful stop' },
  timeout: { type: 'string', description: 'How long to wait for a graceful stop before SIGKILL, in ms (default: 5000)', valueHint: 'ms' },
} as const

export const TimeoutFlag = IntFromText('must be a whole number of milliseconds').pipe(z.int().min(0).max(600_000, 'must be at most 600000 (10 minutes)'))

/**
 * Sends `sig` to the gateway of the lock if its PID is still verified to be it (SPEC §7); a PID that is gone
 * or runs another program gets nothing (false).
 */
export function signal(lockPath: string, info: LockInfo, sig: NodeJS.Signals): boolean {
  let found
  try {
    found = signalGateway(info, sig)
  } catch (error) {
    throw new CliError(`Cannot send ${sig} to pid ${info.pid} (${(error as NodeJS.ErrnoException).code}); is it another user's process?`)
  }
  if (found.kind === 'unknown') throw new CliError(unverifiedLockMessage(lockPath, info))
  return found.kind === 'gateway'
}

/**
 * Stops the gateway of a lock: a graceful request (SIGTERM; on Windows the loopback control route), up to
 * `timeoutMs`, then SIGKILL. Returns how it ended. A killed gateway leaves a stale lock, which is removed.
 */
export async function stopGateway(lockPath: string, info: LockInfo, { force, timeoutMs }: { force: boolean; timeoutMs: number }): Promise<'stopped' | 'killed'> {
  let how: 'stopped' | 'killed' = 'stopped'
  if (force) {
    signal(lockPath, info, 'SIGKILL')
    how = 'killed'
  } else if (process.platform === 'win32') {
    if (!(await sendControl(localUrl(info), info.nonce, 'stop'))) signal(lockPath, info, 'SIGTERM')
  } else signal(lockPath, info, 'SIGTERM')

  if (!(await waitForExit(info, force ? 5000 : timeoutMs))) {
    signal(lockPath, info, 'SIGKILL')
    how = 'killed'
    if (!(await waitForExit(info, 5000))) throw new CliError(`Gateway (pid ${info.pid}) is still running after SIGKILL.`)
  }
  removeStaleLock(lockPath, info)
  return how
}

export default defineCommand({
  meta: { name: 'stop', description: 'Stop the gateway: SIGTERM, wait up to --timeout ms, then SIGKILL; --force kills at once' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), force: z.boolean().optional(), timeout: TimeoutFlag.optional() })
    const target = locate(flags.config)
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
