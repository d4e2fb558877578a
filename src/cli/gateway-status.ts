import { defineCommand } from 'citty'
import { z } from 'zod'
import { ExitCode } from '../errors'
import { configArg, parseFlags, PathFlag } from './args'
import { maskToken } from './output'
import { cleanStale, effectiveToken, formatUptime, healthOf, locate, localUrl } from './target'

const args = { ...configArg, json: { type: 'boolean', description: 'Machine-readable output' } } as const

export default defineCommand({
  meta: { name: 'status', description: 'Is the gateway running? PID, port, URL, masked token, uptime (exit 3 when not running)' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const target = locate(flags.config)
    const staleMessage = (pid: number | null) => `⚠️ Removed a stale lock${pid ? ` of pid ${pid}` : ''}: that process is gone.`

    if (target.state.state !== 'running') {
      const stalePid = target.state.state === 'stale' ? cleanStale(target) : null
      if (flags.json) {
        console.log(JSON.stringify({ running: false, configPath: target.paths.configPath, ...(target.state.state === 'stale' ? { staleLockRemoved: { pid: stalePid } } : {}) }))
      } else {
        if (target.state.state === 'stale') console.log(staleMessage(stalePid))
        console.log('❌ Gateway is not running')
        console.log(`Config: ${target.paths.configPath}`)
        console.log('Start it with: xopcbot gateway')
      }
      return ExitCode.NOT_RUNNING
    }

    const info = target.state.info
    const health = await healthOf(info)
    const token = effectiveToken(target.paths, info)
    const uptime = health.uptime ?? Math.floor((Date.now() - Date.parse(info.createdAt)) / 1000)
    const url = localUrl(info).replace('127.0.0.1', info.host === '0.0.0.0' || info.host === '::' ? 'localhost' : '127.0.0.1')
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
