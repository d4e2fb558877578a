import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { defineCommand } from 'citty'
import { z } from 'zod'
import { loadConfig } from '../config/load'
import { resolvePaths, type Paths } from '../config/paths'
import { CliError, ExitCode, UsageError } from '../errors'
import { findGateway, requestRestart, runningGateway, spawnDetached, startPlan, stopGateway, tokenForRestart, type StartPlan } from '../lifecycle/control'
import { readLock, type LockInfo } from '../lifecycle/lock'
import { identify, isCompiled } from '../lifecycle/process'
import { readFirstError } from '../lifecycle/restart-report'
import { localUrl } from '../net/url'
import {
  compareVersions,
  downloadRelease,
  fetchIndex,
  install,
  installedBinary,
  previousPathOf,
  ReleaseVersion,
  releaseBaseUrl,
  restorePrevious,
  sameFile,
  shownUrl,
  sortVersions,
  swapWithPrevious,
  versionOf,
} from '../ops/update'
import { serviceContext, serviceManager } from '../service'
import { serviceName } from '../service/spec'
import type { ServiceManager, ServiceStatus } from '../service/types'
import { pollUntil } from '../util/poll'
import { VERSION } from '../version'
import { configArg, flag, parseFlags, PathFlag } from './args'

const args = {
  ...configArg,
  check: { type: 'boolean', description: 'Only compare this version with the latest release' },
  version: { type: 'string', description: 'Install this release (one the release index lists; an older one is a downgrade)', valueHint: 'version' },
  rollback: { type: 'boolean', description: 'Go back to the version the last update replaced (<binary>.previous)' },
  json: { type: 'boolean', description: 'Machine-readable output' },
} as const

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** How long a restarted gateway has to report the new version on /health before the update is undone. */
const COME_UP_TIMEOUT_MS = 30_000

/** What runs the binary being replaced, and so must be restarted after the swap. */
type Runner =
  | { kind: 'service'; manager: ServiceManager; name: string; lockPath: string; oldPid: number | null }
  | { kind: 'gateway'; lockPath: string; info: LockInfo; plan: StartPlan | null }
  | { kind: 'none' }

/** The installed service of this config, if there is one (nothing is asked of the manager without its entry). */
async function installedService(paths: Paths): Promise<{ manager: ServiceManager; name: string; status: ServiceStatus } | null> {
  let manager: ServiceManager
  try {
    manager = serviceManager(serviceContext())
  } catch {
    return null
  }
  const name = serviceName(manager.kind, paths)
  if (manager.kind !== 'schtasks' && !existsSync(manager.entryPath(name))) return null
  const status = await manager.status(name)
  return status.installed ? { manager, name, status } : null
}

/**
 * Finds what runs `binary` on this config: the installed service (if it runs), else the gateway of the lock.
 * Anything that runs another executable is left alone, with a note saying so. Errors (an unverifiable lock, a
 * gateway whose --token cannot be read back) come here, before anything is downloaded or replaced.
 */
async function findRunner(configFlag: string | undefined, paths: Paths, binary: string, notes: string[]): Promise<Runner> {
  const target = findGateway(configFlag)
  const service = await installedService(paths)
  if (service) {
    const { manager, name, status } = service
    if (!status.program || !sameFile(status.program, binary)) {
      notes.push(`ℹ️ The service ${name} runs ${status.program ?? 'another program'}, not ${binary}: it was left alone${status.program ? ` (update it with: ${status.program} update)` : ''}.`)
    } else if (status.state === 'running' || status.state === 'starting') {
      const info = readLock(target.lockPath)
      return { kind: 'service', manager, name, lockPath: target.lockPath, oldPid: info?.pid ?? status.pid }
    } else notes.push(`ℹ️ The service ${name} is ${status.state}: it runs the new version at its next start (xopcbot gateway service-start).`)
  }
  const { info } = runningGateway(target)
  if (!info) return { kind: 'none' }
  if (!sameFile(info.execPath, binary)) {
    notes.push(`ℹ️ The gateway (pid ${info.pid}) runs ${info.execPath}, not ${binary}: it was left alone.`)
    return { kind: 'none' }
  }
  // Under a service manager the gateway asks for its own restart (exit 75); otherwise stop + start, as `gateway restart` does.
  const plan = info.supervised && info.allowSigusr1Restart ? null : startPlan(info, tokenForRestart(target.lockPath, info))
  return { kind: 'gateway', lockPath: target.lockPath, info, plan }
}

/** The version a gateway's /health reports, or null. */
async function healthVersion(info: Pick<LockInfo, 'host' | 'port'>): Promise<string | null> {
  try {
    const response = await fetch(`${localUrl(info)}/health`, { signal: AbortSignal.timeout(2000) })
    const body = (await response.json()) as { version?: unknown }
    return response.ok && typeof body.version === 'string' ? body.version : null
  } catch {
    return null
  }
}

type Outcome = { info: LockInfo } | { failure: string }

/**
 * Waits until the gateway of `lockPath` (a process other than `oldPid`) answers /health with `version`, or
 * `failed` says why it will not. A failure after COME_UP_TIMEOUT_MS says what was last seen.
 */
async function comeUp(lockPath: string, version: string, oldPid: number | null, failed: () => Promise<string | null> | string | null): Promise<Outcome> {
  let seen: string | null = null
  const outcome = await pollUntil<Outcome>(
    async () => {
      const failure = await failed()
      if (failure) return { failure }
      const info = readLock(lockPath)
      if (!info || info.pid === oldPid || identify(info).kind !== 'gateway') return null
      seen = await healthVersion(info)
      return seen === version ? { info } : null
    },
    { timeoutMs: COME_UP_TIMEOUT_MS, intervalMs: 100 },
  )
  return outcome ?? { failure: `no gateway reported version ${version} on /health within ${COME_UP_TIMEOUT_MS / 1000} s${seen ? ` (it reported ${seen})` : ''}` }
}

/** A gateway started by this command that exited: how, and its own first error. */
function exited(child: ChildProcess, lockPath: string): string | null {
  if (child.exitCode === null && child.signalCode === null) return null
  const how = child.exitCode !== null ? `exited with code ${child.exitCode}` : `was killed by ${child.signalCode}`
  const error = readFirstError(lockPath)
  return `the new gateway (pid ${child.pid}) ${how} at start${error ? `: ${error}` : ''}`
}

/**
 * Restarts what `runner` is, so that it runs the binary now in place, and waits for it to report `version`.
 * Every failure — a service manager refusing the start, a gateway that cannot be stopped — is an outcome, so
 * that the caller can put the old binary back.
 */
async function restart(runner: Exclude<Runner, { kind: 'none' }>, version: string, oldPid: number | null): Promise<Outcome> {
  try {
    return await restartOnce(runner, version, oldPid)
  } catch (error) {
    return { failure: (error as Error).message.replace(/\s+/g, ' ').trim() }
  }
}

async function restartOnce(runner: Exclude<Runner, { kind: 'none' }>, version: string, oldPid: number | null): Promise<Outcome> {
  if (runner.kind === 'service') {
    const { manager, name } = runner
    // stop + start also ends a restart loop of a binary that crashed.
    await manager.stop(name)
    await manager.start(name)
    let nextCheck = 0
    return comeUp(runner.lockPath, version, oldPid, async () => {
      if (Date.now() < nextCheck) return null
      nextCheck = Date.now() + 250
      const status = await manager.status(name)
      // systemd: "auto-restart" is the pause after the program exited with a failure, before it is run again.
      const crashed = status.state === 'failed' || (manager.kind === 'systemd' && status.detail?.endsWith('/auto-restart'))
      return crashed ? `the service ${name} ${status.state === 'failed' ? 'failed' : 'exited with a failure and is being restarted'} (see: xopcbot gateway logs, xopcbot gateway service-status)` : null
    })
  }
  const { lockPath, plan } = runner
  // Whatever gateway holds the lock now: the old one, or (when putting the old binary back) a new one that came
  // up with the wrong version. None: the new one never started.
  const current = readLock(lockPath)
  const running = current && identify(current).kind === 'gateway' ? current : null
  if (!plan) {
    // Supervised: it asks its service manager for the restart (exit 75); a crashed one the manager restarts by itself.
    if (running && !(await requestRestart(lockPath, running))) return { failure: `could not reach the gateway (pid ${running.pid}) to restart it` }
    return comeUp(lockPath, version, running?.pid ?? oldPid, () => null)
  }
  if (running) await stopGateway(lockPath, running, { force: false, timeoutMs: 15_000 })
  const child = spawnDetached(plan, lockPath)
  const outcome = await comeUp(lockPath, version, oldPid, () => exited(child, lockPath))
  // One that is still starting after the deadline would race the old version for the lock and the port. It is
  // our own child, not yet reaped, so its PID cannot belong to anyone else.
  if ('failure' in outcome && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  return outcome
}

const oldPidOf = (runner: Exclude<Runner, { kind: 'none' }>) => (runner.kind === 'service' ? runner.oldPid : runner.info.pid)
const describe = (runner: Runner) => (runner.kind === 'service' ? `the service ${runner.name}` : runner.kind === 'gateway' ? `the gateway (pid ${runner.info.pid})` : '')

interface Report {
  status: 'ok'
  action: 'updated' | 'rolled-back' | 'up-to-date'
  from: string
  to: string
  binary: string
  previous?: string
  restarted?: 'service' | 'gateway'
  pid?: number
  url?: string
  notes?: string[]
}

/**
 * Puts the new binary to work: restarts what runs it and waits for `version`. If it does not come up, `undo`
 * puts the old binary back, which is restarted in turn, and the command fails with what happened.
 */
async function activate(runner: Runner, version: string, fallback: { version: string; undo: () => void; what: string }, say: (line: string) => void): Promise<LockInfo | null> {
  if (runner.kind === 'none') return null
  say(`Restarting ${describe(runner)} …`)
  const outcome = await restart(runner, version, oldPidOf(runner))
  if ('info' in outcome) return outcome.info
  try {
    fallback.undo()
  } catch (error) {
    throw new CliError(`${fallback.what} ${version} failed (${outcome.failure}), and ${fallback.version} could not be put back (${(error as Error).message}); see: xopcbot gateway logs`)
  }
  say(`⚠️ ${version} did not come up (${outcome.failure}); putting ${fallback.version} back …`)
  const back = await restart(runner, fallback.version, null)
  if ('info' in back) {
    throw new CliError(`${fallback.what} ${version} failed and was undone: ${outcome.failure}. ${fallback.version} is installed again and serves (pid ${back.info.pid}, ${localUrl(back.info)}).`)
  }
  throw new CliError(`${fallback.what} ${version} failed (${outcome.failure}), and ${fallback.version}, installed again, did not come up either (${back.failure}); see: xopcbot gateway logs`)
}

export default defineCommand({
  meta: { name: 'update', description: 'Update the xopcbot binary from the release site (verified, atomic, with restart and automatic rollback)' },
  args,
  async run({ args: given, rawArgs }) {
    const flags = parseFlags(args, given, rawArgs, {
      config: PathFlag.optional(),
      check: z.boolean().optional(),
      version: flag(ReleaseVersion).optional(),
      rollback: z.boolean().optional(),
      json: z.boolean().optional(),
    })
    if (flags.rollback && (flags.check || flags.version)) throw new UsageError('--rollback cannot be combined with --check or --version')
    const say = (line: string) => {
      if (!flags.json) console.log(line)
    }
    const paths = resolvePaths({ env: process.env, configFlag: flags.config })
    const baseUrl = () => releaseBaseUrl(process.env.XOPCBOT_UPDATE_URL?.trim() ? '' : loadConfig(paths.configPath, process.env, { needs: ['update'] }).config.update.baseUrl)

    if (flags.check) {
      const base = baseUrl()
      const index = await fetchIndex(base)
      const newer = compareVersions(index.latest, VERSION)
      if (flags.json) {
        console.log(JSON.stringify({ status: 'ok', current: VERSION, latest: index.latest, update_available: newer > 0, versions: index.versions, base_url: shownUrl(base) }))
        return ExitCode.OK
      }
      console.log(`Current version: ${VERSION}`)
      console.log(`Latest version: ${index.latest} (${shownUrl(`${base}/index.json`)})`)
      if (newer > 0) console.log(isCompiled() ? '⬆️ An update is available: xopcbot update' : '⬆️ A newer release exists; this xopcbot runs from source: update the checkout instead')
      else if (newer === 0) console.log('✅ Up to date')
      else console.log('ℹ️ This version is newer than the latest release')
      return ExitCode.OK
    }

    if (!isCompiled()) throw new CliError(`xopcbot update replaces the compiled xopcbot binary, but this one runs from source (${Bun.main}): update the checkout instead (git pull, npm ci)`)
    const binary = installedBinary()
    const notes: string[] = []

    if (flags.rollback) {
      const previous = previousPathOf(binary)
      if (!existsSync(previous)) throw new CliError(`There is no previous version to go back to: ${previous} does not exist (it is kept by xopcbot update)`)
      const before = await versionOf(previous)
      if (!before) throw new CliError(`${previous} does not run here (--version failed); nothing was changed`)
      const runner = await findRunner(flags.config, paths, binary, notes)
      swapWithPrevious(binary)
      say(`✓ ${binary} is ${before} again (${VERSION} kept as ${previous})`)
      const info = await activate(runner, before, { version: VERSION, undo: () => swapWithPrevious(binary), what: 'The rollback to' }, say)
      return finish({ status: 'ok', action: 'rolled-back', from: VERSION, to: before, binary, previous }, runner, info, notes, flags.json)
    }

    const base = baseUrl()
    const index = await fetchIndex(base)
    if (base.startsWith('http:') && !LOOPBACK.has(new URL(base).hostname)) say(`⚠️ ${shownUrl(base)} is plain http: the checksums come from the same server as the binary, so they only catch a damaged download. Use https.`)
    const wanted = flags.version ?? index.latest
    if (!index.versions.includes(wanted)) {
      // The index may list thousands: name the newest few.
      const listed = index.versions.length > 10 ? `${sortVersions(index.versions).slice(0, 10).join(', ')}, … (${index.versions.length} in all)` : index.versions.join(', ')
      throw new CliError(`Version ${wanted} is not in the release index ${shownUrl(`${base}/index.json`)}; it lists ${listed}`)
    }
    const order = compareVersions(wanted, VERSION)
    // A site whose latest went backwards (an older release published again) must not downgrade everyone who updates.
    if (order < 0 && !flags.version) {
      if (flags.json) console.log(JSON.stringify({ status: 'ok', action: 'up-to-date', from: VERSION, to: VERSION, binary } satisfies Report))
      else console.log(`ℹ️ xopcbot ${VERSION} is newer than the latest release (${wanted}): nothing was changed; --version ${wanted} installs that one`)
      return ExitCode.OK
    }
    if (order === 0) {
      if (flags.json) console.log(JSON.stringify({ status: 'ok', action: 'up-to-date', from: VERSION, to: VERSION, binary } satisfies Report))
      else console.log(`✅ xopcbot ${VERSION} is already up to date${flags.version ? '' : ` (the latest release)`}`)
      return ExitCode.OK
    }
    const runner = await findRunner(flags.config, paths, binary, notes)
    say(`Current version: ${VERSION} (${binary})`)
    if (order < 0) say(`⚠️ ${wanted} is older than ${VERSION}: this is a downgrade.`)
    say(`Downloading ${wanted} from ${shownUrl(`${base}/v${wanted}/`)} …`)
    const download = await downloadRelease(base, wanted, binary)
    say(`✓ Checksum verified (sha256 ${download.sha256})`)
    say(`✓ ${wanted} runs (--version)`)
    install(binary, download.temp)
    say(`✓ Installed ${binary} (${VERSION} kept as ${previousPathOf(binary)})`)
    const info = await activate(runner, wanted, { version: VERSION, undo: () => restorePrevious(binary), what: 'The update to' }, say)
    return finish({ status: 'ok', action: 'updated', from: VERSION, to: wanted, binary, previous: previousPathOf(binary) }, runner, info, notes, flags.json)
  },
})

function finish(report: Report, runner: Runner, info: LockInfo | null, notes: string[], json: boolean | undefined): number {
  if (info) Object.assign(report, { restarted: runner.kind, pid: info.pid, url: localUrl(info) })
  if (json) {
    console.log(JSON.stringify(notes.length ? { ...report, notes } : report))
    return ExitCode.OK
  }
  for (const note of notes) console.log(note)
  const verb = report.action === 'rolled-back' ? 'Rolled back' : compareVersions(report.to, report.from) < 0 ? 'Downgraded' : 'Updated'
  if (info) console.log(`✅ ${verb} xopcbot ${report.from} → ${report.to}; ${runner.kind === 'service' ? `the service` : 'the gateway'} serves ${report.to} (pid ${info.pid}, ${localUrl(info)})`)
  else console.log(`✅ ${verb} xopcbot ${report.from} → ${report.to}${notes.length ? '' : '; no gateway runs on this config: the new version runs at its next start'}`)
  if (report.action === 'updated') console.log('Undo with: xopcbot update --rollback')
  return ExitCode.OK
}
