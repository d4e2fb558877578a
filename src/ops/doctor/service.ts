import { accessSync, constants } from 'node:fs'
import { isAbsolute } from 'node:path'
import type { Paths } from '../../config/paths'
import type { LockInfo } from '../../lifecycle/lock'
import { serviceManager } from '../../service'
import { serviceName } from '../../service/spec'
import { ServiceError, type ServiceContext, type ServiceManager, type ServiceStatus } from '../../service/types'
import { cliCommand, fail, ok, skip, warn, type Check } from './check'

const runnable = (path: string) => {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

const readable = (path: string) => {
  try {
    accessSync(path, constants.R_OK)
    return true
  } catch {
    return false
  }
}

/** What the installed entry runs that is missing: its program, or (run from source) the CLI entry file. */
function missingFiles(status: ServiceStatus): string | null {
  if (!status.program) return 'it names no program'
  if (!runnable(status.program)) return `its program ${status.program} does not exist or is not executable`
  const entry = status.args[0]
  if (entry && entry !== 'gateway' && isAbsolute(entry) && !readable(entry)) return `its CLI file ${entry} does not exist`
  return null
}

/** Whether the manager starts the entry at login; null where it cannot be told apart from installed (launchd, schtasks). */
async function enabledState(ctx: ServiceContext, manager: ServiceManager, name: string): Promise<string | null> {
  if (manager.kind !== 'systemd') return null
  const result = await ctx.run(['systemctl', '--user', 'is-enabled', `${name}.service`])
  return result.stdout.trim() || 'unknown'
}

export interface ServiceChecks {
  service: Check
  /** Linux only */
  linger: Check | null
}

/**
 * The per-user service of this config, as `gateway service-status` sees it: installed, enabled, running, and
 * pointing at files that exist. On Linux also lingering, without which a systemd user service stops at logout.
 */
export async function checkService(ctx: ServiceContext, paths: Paths, running: LockInfo | null): Promise<ServiceChecks> {
  const lingerApplies = ctx.platform === 'linux'
  let manager: ServiceManager
  try {
    manager = serviceManager(ctx)
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error
    return { service: skip('service', error.message), linger: null }
  }
  const unavailable = await manager.unavailable()
  if (unavailable) {
    return {
      service: warn('service', `cannot be installed here: ${unavailable}`, `run the gateway in the foreground (${cliCommand(paths, 'gateway')}) or under your own supervisor`),
      linger: lingerApplies ? skip('linger', 'no systemd user manager') : null,
    }
  }
  const name = serviceName(manager.kind, paths)
  const status = await manager.status(name)
  if (!status.installed) {
    return {
      service: warn('service', `not installed (${name}): the gateway runs only while you keep it running`, `run: ${cliCommand(paths, 'gateway install')}`),
      linger: lingerApplies ? skip('linger', 'no service installed') : null,
    }
  }
  const linger = lingerApplies ? await checkLinger(ctx) : null
  const missing = missingFiles(status)
  if (missing) return { service: fail('service', `${name} is installed, but ${missing}`, `run: ${cliCommand(paths, 'gateway install')} (it updates the entry in place)`), linger }
  const enabled = await enabledState(ctx, manager, name)
  const described = `${name} (${status.file ?? manager.entryPath(name)})`
  const byHand = running && status.pid !== running.pid ? `; a gateway started by hand (pid ${running.pid}) runs this config` : ''
  let service: Check
  if (status.state === 'failed') {
    service = fail('service', `${described} failed${status.detail ? ` (${status.detail})` : ''}${byHand}`, `see why: ${cliCommand(paths, 'gateway logs --level error')}; then run: ${cliCommand(paths, 'gateway service-start')}`)
  } else if (enabled !== null && enabled !== 'enabled') {
    service = warn('service', `${described} is ${status.state} but not enabled (${enabled}): it does not start at login`, `run: systemctl --user enable ${name}.service`)
  } else if (status.state === 'running') {
    service = ok('service', `${described}: ${enabled ? 'enabled, ' : ''}running${status.pid ? ` (pid ${status.pid})` : ''}, runs ${status.program}`)
  } else if (status.state === 'stopped') {
    service = warn('service', `${described} is installed but stopped${byHand}`, `run: ${cliCommand(paths, 'gateway service-start')}`)
  } else {
    service = warn('service', `${described} is ${status.state}${status.detail ? ` (${status.detail})` : ''}${byHand}`, `run: ${cliCommand(paths, 'gateway service-status')}`)
  }
  return { service, linger }
}

/** Lingering keeps a systemd user manager (and so the service) running after logout. */
async function checkLinger(ctx: ServiceContext): Promise<Check> {
  const result = await ctx.run(['loginctl', 'show-user', ctx.user, '--property=Linger', '--value'])
  const value = result.stdout.trim()
  if (result.code === 0 && value === 'yes') return ok('linger', `on for ${ctx.user}: the service keeps running after logout`)
  if (result.code === 0 && value === 'no') return warn('linger', `off for ${ctx.user}: the service stops when you log out`, `run: loginctl enable-linger ${ctx.user}`)
  const why = (result.stderr || result.stdout).trim().split('\n')[0] || `exit ${result.code}`
  return warn('linger', `cannot be read (${why})`, `check: loginctl show-user ${ctx.user}`)
}
