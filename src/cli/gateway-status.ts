import { defineCommand } from 'citty'
import { z } from 'zod'
import { CliError, ExitCode } from '../errors'
import { configArg, parseFlags, PathFlag } from './args'
import { removeStaleLock, unverifiedLockMessage } from '../lifecycle/lock'
import { displayUrl, maskToken } from './output'
import { effectiveToken, formatUptime, healthOf, locate, runningOrReport } from './target'

const args = { ...configArg, json: { type: 'boolean', description: 'Machine-readable output' } } as const

export default defineCommand({
  meta: { name: 'status', description: 'Is the gateway running? PID, port, URL, masked token, uptime (exit 3 when not running)' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const target = locate(flags.config)
    if (target.state.state === 'unverified') throw new CliError(unverifiedLockMessage(target.lockPath, target.state.info))
    if (flags.json && target.state.state !== 'running') {
      const stale = target.state.state === 'stale' ? target.state : null
      if (stale) removeStaleLock(target.lockPath, stale.info)
      const removed = stale ? { staleLockRemoved: { pid: stale.info?.pid ?? null, ...(stale.other ? { command: stale.other.command } : {}) } } : {}
      console.log(JSON.stringify({ running: false, configPath: target.paths.configPath, ...removed }))
      return ExitCode.NOT_RUNNING
    }
    const info = runningOrReport(target, `❌ Gateway is not running\nConfig: ${target.paths.configPath}\nStart it with: xopcbot gateway`)
    if (!info) return ExitCode.NOT_RUNNING
    const health = await healthOf(info)
    const token = effectiveToken(target.paths, info)
    const uptime = health.uptime ?? Math.floor((Date.now() - Date.parse(info.createdAt)) / 1000)
    const url = displayUrl(info.host, info.port)
    if (flags.json) {
      console.log(
        JSON.stringify({
          running: true,
          pid: info.pid,
          host: info.host,
          port: info.port,
          url,
          token: token ? maskToken(token) : null,
          uptime,
          health: health.state,
          version: info.version,
          startedAt: info.createdAt,
          configPath: info.configPath,
          supervised: info.supervised,
        }),
      )
      return ExitCode.OK
    }
    console.log('✅ Gateway is running')
    console.log(`PID: ${info.pid}`)
    console.log(`Port: ${info.port}`)
    console.log(`Uptime: ${formatUptime(uptime)}`)
    if (health.state !== 'healthy') console.log(`⚠️ Health: ${health.state === 'draining' ? 'draining (stopping)' : 'not answering on /health'}`)
    console.log('🌐 Access:')
    console.log(`URL: ${url}`)
    console.log(`Token: ${token ? maskToken(token) : '(none)'}`)
    console.log('📝 Management:')
    console.log('xopcbot gateway stop      # stop the gateway')
    console.log('xopcbot gateway restart   # restart the gateway')
    return ExitCode.OK
  },
})
