import type { Config } from '../config/schema'
import { CliError } from '../errors'
import { inspectLock, otherProgramMessage } from './lock'
import { freeThePort, terminate } from './ports'

/** `gateway --force`: stop this config's running gateway and whatever listens on the port, then start. */
export async function forceStart(lockPath: string, config: Config, print: (line: string) => void) {
  const state = inspectLock(lockPath)
  if (state.state === 'running' && state.info.pid !== process.pid) {
    const signal = await terminate(state.info.pid, state.info)
    if (signal) print(`🔪 Stopped the running gateway (pid ${state.info.pid}, port ${state.info.port}) with ${signal}`)
  }
  if (state.state === 'stale' && state.info && state.other) print(`⚠️ ${otherProgramMessage(state.info, state.other)}`)
  const { killed, refused } = await freeThePort(config.gateway.host, config.gateway.port)
  for (const k of killed) print(`🔪 Killed pid ${k.pid} (${k.command}) with ${k.signal}; port ${config.gateway.port} is free`)
  if (refused.length) {
    const r = refused[0]!
    throw new CliError(`Port ${config.gateway.port} is held by pid ${r.pid} (${r.command}), which --force will not kill: ${r.reason}.`)
  }
}
