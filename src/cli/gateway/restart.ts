import type { ChildProcess } from 'node:child_process'
import { defineCommand } from 'citty'
import { z } from 'zod'
import { resolve } from 'node:path'
import { loadConfig } from '../../config/load'
import { resolvePaths } from '../../config/paths'
import { applyGatewayOverrides } from '../../config/settings'
import { CliError, ExitCode } from '../../errors'
import { findGateway, requestRestart, spawnDetached, startPlan, stopGateway, tokenForRestart, waitForGateway, type StartPlan } from '../../lifecycle/control'
import { inspectLock, type LockInfo } from '../../lifecycle/lock'
import { errorOf, readFirstError, readRestartResult } from '../../lifecycle/restart-report'
import { displayUrl } from '../../net/url'
import { configArg, parseFlags, PathFlag } from '../args'
import { gatewayFlags } from './flags'
import { runningOrReport } from './running'

const args = { ...configArg, force: { type: 'boolean', description: 'Kill it and start it anew' } } as const
const READY_TIMEOUT_MS = 30_000

/** Why a restart did not happen: a line of context (stdout) and the error, printed as one sentence. */
interface Failure {
  note: string
  error: CliError
}

const keepsRunning = (old: LockInfo) => `ℹ️ Nothing was restarted: the gateway (pid ${old.pid}) keeps running unchanged.`

/**
 * The running gateway's answer to this restart request, if it refused or failed (see restart-report.ts):
 * an answer for the lock's nonce newer than `seenSeq`.
 */
function answerOf(lockPath: string, old: LockInfo, seenSeq: number): Failure | null {
  const result = readRestartResult(lockPath)
  if (!result || result.nonce !== old.nonce || result.seq <= seenSeq) return null
  if (result.state === 'refused') return { note: keepsRunning(old), error: errorOf(result) }
  const which = result.pid ? `the new process (pid ${result.pid}) did not start` : 'the gateway did not start with the new config'
  const note = result.stillRunning
    ? `⚠️ Restart failed: ${which}; the gateway (pid ${old.pid}) carries on with its previous config.`
    : `⚠️ Restart failed: ${which}, and the gateway (pid ${old.pid}) could not start again: it is not running now.`
  return { note, error: new CliError(result.message) }
}

/** A background gateway started by this command that exited before it was healthy: its own first error. */
function exitedAtStart(lockPath: string, old: LockInfo, child: ChildProcess): Failure | null {
  if (child.exitCode === null && child.signalCode === null) return null
  const how = child.exitCode !== null ? `exited with code ${child.exitCode}` : `was killed by ${child.signalCode}`
  const now = inspectLock(lockPath)
  const after = now.state === 'running' ? `the gateway of this config now runs as pid ${now.info.pid}` : 'no gateway is running now'
  return {
    note: `⚠️ The gateway (pid ${old.pid}) was stopped, but the new one (pid ${child.pid}) ${how} at start: ${after} (see: xopcbot gateway logs).`,
    error: new CliError(readFirstError(lockPath) ?? `The new gateway (pid ${child.pid}) ${how} at start without printing an error; see: xopcbot gateway logs`),
  }
}

/**
 * Loads the config the process of `plan` would load — the same loader, environment, flags (a relative
 * `--config` or `--token-file` taken from its directory) — and throws the error its start would print.
 */
function checkStart(plan: StartPlan) {
  const flags = gatewayFlags(plan.argv.slice(plan.argv.indexOf('gateway') + 1))
  const paths = resolvePaths({ env: plan.env, configFlag: flags.config, cwd: plan.cwd })
  const tokenFile = flags.tokenFile === undefined ? undefined : resolve(plan.cwd, flags.tokenFile)
  applyGatewayOverrides(loadConfig(paths.configPath, plan.env).config, plan.env, { host: flags.host, port: flags.port, token: flags.token, tokenFile })
}

export default defineCommand({
  meta: { name: 'restart', description: 'Restart the gateway gracefully (SIGUSR1 when it allows it, else stop + start); --force kills and starts anew' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), force: z.boolean().optional() })
    const target = findGateway(flags.config)
    const old = runningOrReport(target, '❌ Gateway is not running. Start it with: xopcbot gateway')
    if (!old) return ExitCode.NOT_RUNNING
    let how: string
    let accept = (info: typeof old) => info.pid !== old.pid
    let failed: () => Failure | null

    if (!flags.force && old.allowSigusr1Restart) {
      // The gateway restarts itself: a new process (respawn, or the service manager after exit 75), or the
      // same process with a higher restart count (XOPCBOT_NO_RESPAWN=1). It validates the new config first,
      // with its own environment and flags (this shell's may differ, e.g. a ${VAR} only it has), and answers
      // a refusal or a failed start in the restart-result file at once.
      const seenSeq = ((r) => (r && r.nonce === old.nonce ? r.seq : 0))(readRestartResult(target.lockPath))
      const sent = await requestRestart(target.lockPath, old)
      if (!sent) throw new CliError(`Could not reach the gateway (pid ${old.pid}) to restart it; try: xopcbot gateway restart --force`)
      accept = (info) => info.pid !== old.pid || info.restarts > old.restarts
      failed = () => answerOf(target.lockPath, old, seenSeq)
      how = `gracefully (${process.platform === 'win32' ? 'control route' : 'SIGUSR1'})`
    } else {
      // This command starts the new process, with this environment: check its config before touching the
      // running gateway, so that an invalid one leaves it serving.
      const plan = startPlan(old, tokenForRestart(target.lockPath, old))
      try {
        checkStart(plan)
      } catch (error) {
        console.log(keepsRunning(old))
        throw error
      }
      await stopGateway(target.lockPath, old, { force: flags.force ?? false, timeoutMs: 15_000 })
      const child = spawnDetached(plan, target.lockPath)
      failed = () => exitedAtStart(target.lockPath, old, child)
      how = flags.force ? '(killed and started anew)' : '(stopped, then started with the same arguments)'
    }

    const outcome = await waitForGateway(target.lockPath, accept, READY_TIMEOUT_MS, failed)
    if (!outcome) throw new CliError(`The gateway did not come back within ${READY_TIMEOUT_MS / 1000} s; see: xopcbot gateway logs`)
    if ('failure' in outcome) {
      console.log(outcome.failure.note)
      throw outcome.failure.error
    }
    const fresh = outcome.info
    console.log(`✅ Gateway restarted ${how}`)
    console.log(`PID: ${fresh.pid}`)
    // The address `xopcbot gateway` and `status` print: the one a person opens.
    console.log(`URL: ${displayUrl(fresh.host, fresh.port)}`)
    return ExitCode.OK
  },
})
