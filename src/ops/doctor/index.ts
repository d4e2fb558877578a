import { z } from 'zod'
import { PRESETS } from '../../agent/providers'
import { effectiveToken } from '../../lifecycle/control'
import { inspectLock, lockPathFor, type LockInfo } from '../../lifecycle/lock'
import { Redactor, secretsOf } from '../../logging/redact'
import { localUrl } from '../../net/url'
import type { ServiceContext } from '../../service/types'
import { withTimeout } from '../../util/timeout'
import { cliCommand, skip, warn, type Check, type DoctorContext } from './check'
import { checkDataDir, inspectConfig } from './config'
import { checkDatabase, checkLock, checkPort } from './local'
import { checkClock, checkProviders, checkTelegram, checkWebhook, GatewayChannel, type ClockSample } from './network'
import { checkService } from './service'

export type { Check, CheckStatus, DoctorContext } from './check'

export interface DoctorReport {
  /** true when no check failed (warnings are fine) */
  ok: boolean
  checks: Check[]
}

const StatusChannels = z.object({ channels: z.record(z.string(), GatewayChannel) })

/** The channels as the running gateway reports them, or null when it cannot be asked. */
async function gatewayChannels(info: LockInfo, token: string | null, timeoutMs: number): Promise<Record<string, GatewayChannel> | null> {
  try {
    const response = await fetch(`${localUrl(info)}/api/status`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeoutMs) })
    if (!response.ok) return null
    const parsed = StatusChannels.safeParse(await response.json())
    return parsed.success ? parsed.data.channels : null
  } catch {
    return null
  }
}

/**
 * Every check, in a fixed order: the local ones first (config, files, lock, port, service), then those that ask
 * other servers (providers, channels, and the clock from their answers), all at once, each with its time limit.
 * Nothing is changed anywhere. Every text goes through the redaction of the gateway's logs: API keys and bot
 * tokens never appear, not even inside an error a server or the network stack wrote.
 */
export async function runDoctor(ctx: DoctorContext, service: ServiceContext): Promise<DoctorReport> {
  const view = inspectConfig(ctx)
  const lockPath = lockPathFor(view.paths.locksDir, view.paths.configPath)
  const lock = inspectLock(lockPath)
  const running = lock.state === 'running' ? lock.info : null

  let token: string | null = null
  try {
    token = running ? effectiveToken(view.paths, running) : null
  } catch {}
  const redactor = new Redactor()
  const keyVars = Object.values(PRESETS).flatMap((preset) => (preset.keyVar ? [preset.keyVar] : []))
  redactor.setSecrets([...secretsOf(view.config, ctx.env, keyVars), token])

  const samples: ClockSample[] = []
  const channelChecks = async (): Promise<Check[]> => {
    if (view.unreadable.has('channels')) return [skip('channels', 'channels cannot be read from the config (see config)')]
    const channels = Object.entries(view.config.channels)
    if (!channels.length) return [skip('channels', 'none configured')]
    const reports = running ? await gatewayChannels(running, token, ctx.timeoutMs) : null
    const isRunning = reports !== null
    return Promise.all(
      channels.map(([name, channel]) =>
        channel.type === 'telegram'
          ? checkTelegram(ctx, name, channel, view, samples, reports?.[name], isRunning)
          : checkWebhook(ctx, name, channel, view, samples, reports?.[name], isRunning),
      ),
    )
  }
  // The service manager's commands have no time limit of their own; a hung one must not hang the report.
  const serviceLimitMs = Math.max(ctx.timeoutMs, 5000)
  const hung = { service: warn('service', `the service manager did not answer within ${serviceLimitMs / 1000} s`, `run: ${cliCommand(view.paths, 'gateway service-status')}`), linger: null }
  const [port, services, providers, channels] = await Promise.all([
    checkPort(ctx, view, running),
    withTimeout(checkService(service, view.paths, running), serviceLimitMs, hung),
    checkProviders(ctx, view, samples),
    channelChecks(),
  ])

  const checks: Check[] = [
    ...view.checks,
    checkDataDir(ctx, view),
    checkDatabase(ctx, view),
    checkLock(lockPath, lock),
    port,
    services.service,
    ...(services.linger ? [services.linger] : []),
    ...providers,
    ...channels,
    checkClock(samples),
  ]
  const safe = checks.map((check) => ({ ...check, summary: redactor.text(check.summary), ...(check.fix !== undefined ? { fix: redactor.text(check.fix) } : {}) }))
  return { ok: safe.every((check) => check.status !== 'fail'), checks: safe }
}
