import { writeSync } from 'node:fs'
import { applyGatewayOverrides, tokenSource, type GatewayFlags } from '../config/settings'
import { loadConfig } from '../config/load'
import { resolvePaths, type Env } from '../config/paths'
import type { Config } from '../config/schema'
import { CliError, ExitCode } from '../errors'
import { loadTestPlugin } from '../server/test-plugin'
import { VERSION } from '../version'
import { Gateway } from './gateway'
import { LifecycleEvents } from './events'
import { forceStart } from './force-start'
import { GatewayLock, lockPathFor, maskTokenArgs, withoutOneShotArgs, withoutTokenArgs } from './lock'
import { isCompiled, selfCommand } from './process'
import { handOver } from './respawn'
import { describeFailure, writeRestartResult, type RestartResult } from './restart-report'

export interface RunOptions {
  env: Env
  configFlag?: string | undefined
  flags: GatewayFlags
  force?: boolean
  /** the arguments after the executable (and entry file), recorded (a --token value masked, one-shot flags left out) so that a restart repeats them */
  argv: string[]
  /** set by service entries that cannot set environment variables (Windows tasks): like XOPCBOT_SERVICE_MARKER */
  serviceMarker?: string | undefined
  print: (line: string) => void
  /** the lines printed once the gateway serves (the CLI's wording) */
  banner: (started: StartedGateway) => string[]
}

/** What the banner of a started gateway tells. */
export interface StartedGateway {
  host: string
  port: number
  token: string | null
  configPath: string
  configExists: boolean
}


/**
 * The foreground run loop (SPEC §5.2–5.4): config → lock → storage and server → wait for events →
 * graceful stop → release the lock → exit, or restart. Resolves to the exit code.
 */
export async function runGateway(options: RunOptions): Promise<number> {
  const { env, print } = options
  const paths = resolvePaths({ env, configFlag: options.configFlag })
  const loadEffective = (): { config: Config; exists: boolean } => {
    const loaded = loadConfig(paths.configPath, env)
    return { config: applyGatewayOverrides(loaded.config, env, options.flags), exists: loaded.exists }
  }
  let { config, exists } = loadEffective()
  // Everything the gateway creates (lock, database, WAL, logs) is private to the user.
  process.umask(0o077)

  const lockPath = lockPathFor(paths.locksDir, paths.configPath)
  const supervised = !!env.XOPCBOT_SERVICE_MARKER || !!options.serviceMarker
  const allowSigusr1Restart = env.XOPCBOT_ALLOW_SIGUSR1_RESTART === '1' || !!options.serviceMarker
  const respawn = !supervised && env.XOPCBOT_NO_RESPAWN !== '1'
  // Started in the background by `restart` or a respawn: stderr is a file that should hold only a failed
  // start's error or a crash (see restart-report.ts), so the running log goes to the log file alone.
  const background = env.XOPCBOT_BACKGROUND === '1'
  // Test-only, and only from source: a released binary never imports a module named by its environment.
  const testPlugin = isCompiled() ? null : await loadTestPlugin(env.XOPCBOT_TEST_PLUGIN)
  // A token given by --token or the environment is in no file: the gateway keeps it beside its lock
  // (0600) for status, token and restart, since the lock records only "--token ***".
  const source = tokenSource(env, options.flags)
  const tokenToKeep = (c: Config) => (source === 'flag' || source === 'env' ? c.gateway.auth.token : null)

  if (options.force) await forceStart(lockPath, config, print)

  const command = selfCommand()
  // What the lock records and a respawn runs: this start's arguments, less those that only this start acts on.
  const rerunArgv = withoutOneShotArgs(options.argv)
  const lockFields = (c: Config) => ({
    configPath: paths.configPath,
    host: c.gateway.host,
    port: c.gateway.port,
    version: VERSION,
    execPath: command[0]!,
    argv: [...command.slice(1), ...maskTokenArgs(rerunArgv)],
    cwd: process.cwd(),
    supervised,
    allowSigusr1Restart,
    respawn,
    restarts: 0,
  })
  const takeLock = (c: Config) => {
    const taken = GatewayLock.acquire(lockPath, lockFields(c))
    taken.keepToken(tokenToKeep(c))
    return taken
  }
  let lock = takeLock(config)

  const events = new LifecycleEvents()
  let gateway: Gateway
  const control = {
    nonce: () => lock.current.nonce,
    stop: () => events.push({ kind: 'stop', reason: 'control request' }),
    restart: () => events.push({ kind: 'restart', reason: 'control request' }),
    reloadToken: () => {
      const fresh = loadEffective().config
      gateway.setToken(fresh.gateway.auth.token)
      gateway.log.info('API token reloaded', { configured: !!fresh.gateway.auth.token })
    },
  }
  const startGateway = (c: Config) => {
    const next = new Gateway({ config: c, configPath: paths.configPath, control, testPlugin, env, console: !background, loadConfig: () => loadEffective().config, watchConfig: true })
    next.start()
    return next
  }
  try {
    gateway = startGateway(config)
  } catch (error) {
    lock.release()
    throw error
  }
  /**
   * Starts the gateway in this process with `next`; when that fails, with `previous` again (and the lock says
   * so). Returns the config it runs with; throws only when neither starts.
   */
  const startInPlace = (next: Config, previous: Config, failed: (error: unknown) => void = () => {}): Config => {
    try {
      gateway = startGateway(next)
      return next
    } catch (error) {
      failed(error)
      gateway = startGateway(previous)
      lock.update({ host: previous.gateway.host, port: gateway.port })
      lock.keepToken(tokenToKeep(previous))
      gateway.log.error('restart with the new config failed; running with the previous one', { err: (error as Error).message })
      return previous
    }
  }
  const started = { host: gateway.options.config.gateway.host, port: gateway.port, token: gateway.token, configPath: paths.configPath, configExists: exists }
  for (const line of options.banner(started)) print(line)

  let stopping = false
  const onStopSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      gateway.log.warn('second stop signal: exiting without waiting for the drain', { signal })
      gateway.closeNow()
      lock.release()
      process.exit(130)
    }
    events.push({ kind: 'stop', reason: signal })
  }
  const onRestartSignal = () => {
    if (allowSigusr1Restart) events.push({ kind: 'restart', reason: 'SIGUSR1' })
    else gateway.log.warn('SIGUSR1 ignored: restart by signal needs XOPCBOT_ALLOW_SIGUSR1_RESTART=1 in the gateway environment')
  }
  // SIGHUP reloads the config (Windows has none: the file watch and POST /api/config/reload do it there). The
  // gateway logs the outcome, an invalid file included. It is also what a closed terminal sends: a foreground
  // gateway whose terminal is gone (a write to it fails) stops, as it always did, instead of running on unseen.
  const terminalGone = () => {
    try {
      writeSync(2, '')
      return false
    } catch {
      return true
    }
  }
  const onReloadSignal = () => {
    if (!background && terminalGone()) onStopSignal('SIGHUP')
    else void gateway.reload('SIGHUP').catch(() => {})
  }
  process.on('SIGTERM', onStopSignal)
  process.on('SIGINT', onStopSignal)
  if (process.platform !== 'win32') {
    process.on('SIGUSR1', onRestartSignal)
    process.on('SIGHUP', onReloadSignal)
  }
  const onUnhandled = (reason: unknown) => gateway.log.error('unhandled rejection', { err: reason })
  process.on('unhandledRejection', onUnhandled)
  const detach = () => {
    process.off('SIGTERM', onStopSignal)
    process.off('SIGINT', onStopSignal)
    process.off('SIGUSR1', onRestartSignal)
    process.off('SIGHUP', onReloadSignal)
    process.off('unhandledRejection', onUnhandled)
  }

  // Each restart request is answered in the restart-result file beside the lock when it is refused or fails,
  // so that `gateway restart` reports at once (see restart-report.ts); `seq` tells one request from the next.
  let restartSeq = 0
  const answerer = (nonce: string, seq: number) => (state: RestartResult['state'], error: unknown, extra: Pick<RestartResult, 'pid' | 'stillRunning'>) => {
    try {
      writeRestartResult(lockPath, { nonce, seq, state, ...describeFailure(error), ...extra })
    } catch (writeError) {
      gateway.log.warn('could not write the restart result beside the lock', { err: (writeError as Error).message })
    }
  }

  // However the loop ends (return or error), the signal handlers go and the lock is released if still ours.
  try {
    for (;;) {
      const event = await events.next()
      if (event.kind === 'stop') {
        stopping = true
        await gateway.stop(event.reason)
        return ExitCode.OK
      }

      // Restart: validate first, with this process's environment and flags, which the new gateway gets too.
      // A config that no longer loads keeps the running gateway as it is.
      const answer = answerer(lock.current.nonce, ++restartSeq)
      let next: Config
      try {
        next = loadEffective().config
      } catch (error) {
        gateway.log.error('restart refused: the config is invalid; the gateway keeps running unchanged', { err: (error as Error).message })
        answer('refused', error, { stillRunning: true })
        continue
      }

      if (supervised) {
        stopping = true
        await gateway.stop(`${event.reason}: exiting with 75 so that the service manager starts it again`)
        return ExitCode.RESTART
      }

      if (respawn) {
        stopping = true
        await gateway.stop(`${event.reason}: handing over to a new process`)
        lock.release()
        // A --token value goes to the successor through its environment, not its command line (ps); its stderr
        // goes to a private file beside the lock: what it prints if it fails to start.
        const flagToken = source === 'flag' ? next.gateway.auth.token : null
        const plan = {
          execPath: command[0]!,
          argv: [...command.slice(1), ...(flagToken ? withoutTokenArgs(rerunArgv) : rerunArgv)],
          cwd: process.cwd(),
          env: { ...process.env, XOPCBOT_BACKGROUND: '1', ...(flagToken ? { XOPCBOT_GATEWAY_TOKEN: flagToken } : {}) },
        }
        const handed = await handOver(plan, lockPath)
        if ('successor' in handed) {
          print(`🔄 Restarted: the gateway now runs as pid ${handed.successor.pid} on port ${handed.successor.port}`)
          return ExitCode.OK
        }
        // The successor did not come up (what is left of it was killed): carry on in this process, with the new
        // config if it starts, else with the previous one.
        const { failure, pid } = handed
        let stillRunning = false
        try {
          lock = takeLock(next)
          config = startInPlace(next, config)
          stillRunning = true
        } finally {
          answer('failed', new CliError(failure), { ...(pid ? { pid } : {}), stillRunning })
        }
        stopping = false
        gateway.log.error('the new process failed to start; restarted in this process instead', { pid, err: failure })
        continue
      }

      // XOPCBOT_NO_RESPAWN=1: rebuild everything inside this process.
      await gateway.stop(`${event.reason}: restarting in this process`)
      let failure: unknown = null
      let stillRunning = false
      try {
        config = startInPlace(next, config, (error) => (failure = error))
        stillRunning = true
      } finally {
        if (failure) answer('failed', failure, { stillRunning })
      }
      lock.update({ host: gateway.options.config.gateway.host, port: gateway.port, restarts: lock.current.restarts + 1 })
      gateway.log.info('gateway restarted in this process', { pid: process.pid, port: gateway.port })
    }
  } finally {
    detach()
    lock.release()
  }
}
