import { defineCommand } from 'citty'
import { z } from 'zod'
import { CliError, ExitCode } from '../errors'
import { sendControl } from '../server/control'
import { configArg, parseFlags, PathFlag } from './args'
import { signal, stopGateway } from './gateway-stop'
import { locate, localUrl, runningOrReport, spawnDetached, tokenForRestart, waitForGateway } from './target'

const args = { ...configArg, force: { type: 'boolean', description: 'Kill it and start it anew' } } as const
const READY_TIMEOUT_MS = 30_000

export default defineCommand({
  meta: { name: 'restart', description: 'Restart the gateway gracefully (SIGUSR1 when it allows it, else stop + start); --force kills and starts anew' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), force: z.boolean().optional() })
    const target = locate(flags.config)
    const old = runningOrReport(target, '❌ Gateway is not running. Start it with: xopcbot gateway')
    if (!old) return ExitCode.NOT_RUNNING
    let how: string
    let accept = (info: typeof old) => info.pid !== old.pid

    if (!flags.force && old.allowSigusr1Restart) {
      // The gateway restarts itself: a new process (respawn, or the service manager after exit 75), or the
      // same process with a higher restart count (XOPCBOT_NO_RESPAWN=1).
      const sent = process.platform === 'win32' ? await sendControl(localUrl(old), old.nonce, 'restart') : signal(target.lockPath, old, 'SIGUSR1')
      if (!sent) throw new CliError(`Could not reach the gateway (pid ${old.pid}) to restart it; try: xopcbot gateway restart --force`)
      accept = (info) => info.pid !== old.pid || info.restarts > old.restarts
      how = 'graceful restart (SIGUSR1)'
    } else {
      const token = tokenForRestart(target.lockPath, old)
      await stopGateway(target.lockPath, old, { force: flags.force ?? false, timeoutMs: 15_000 })
      spawnDetached(old, token)
      how = flags.force ? 'killed and started anew' : 'stopped, then started with the same arguments'
    }

    const fresh = await waitForGateway(target.lockPath, accept, READY_TIMEOUT_MS)
    if (!fresh) throw new CliError(`The gateway did not come back within ${READY_TIMEOUT_MS / 1000} s; see: xopcbot gateway logs`)
    console.log(`✅ Gateway restarted (${how})`)
    console.log(`PID: ${fresh.pid}`)
    console.log(`URL: ${localUrl(fresh)}`)
    return ExitCode.OK
  },
})
