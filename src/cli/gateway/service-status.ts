import { defineCommand } from 'citty'
import { z } from 'zod'
import { loadConfig } from '../../config/load'
import { ExitCode } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { displayUrl } from '../output'
import { ADDRESS_NEEDS, serviceTarget } from './service-target'

const statusArgs = { ...configArg, json: { type: 'boolean', description: 'Machine-readable output' } } as const

export default defineCommand({
  meta: { name: 'service-status', description: 'Show the service as the service manager sees it (exit 3 when not running)' },
  args: statusArgs,
  async run({ args, rawArgs }) {
    const flags = parseFlags(statusArgs, args, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const { manager, paths, name } = serviceTarget(flags.config)
    const status = await manager.status(name)
    let url: string | null = null
    try {
      const { config } = loadConfig(paths.configPath, process.env, { needs: ADDRESS_NEEDS })
      url = displayUrl(config.gateway.host, config.gateway.port)
    } catch {}
    const code = status.state === 'running' ? ExitCode.OK : ExitCode.NOT_RUNNING
    if (flags.json) {
      console.log(JSON.stringify({ name, manager: manager.kind, ...status, url }))
      return code
    }
    // The original layout: each heading underlined to its width.
    const rule = (title: string) => [title, '─'.repeat([...title].length)]
    const lines = [
      ...rule('📋 Service Status'),
      `Installed: ${status.installed ? 'Yes' : 'No'}`,
      `Status: ${status.installed ? status.state : 'not installed'}`,
      `PID: ${status.pid ?? '-'}`,
    ]
    if (status.installed) {
      lines.push(...rule('📝 Configuration'), `Program: ${status.program ?? '-'}`, `Args: ${status.args.join(' ')}`, `Working Dir: ${status.workingDirectory ?? '-'}`)
    }
    if (url) lines.push(...rule('🌐 Access'), `URL: ${url}`)
    lines.push(
      ...rule('📝 Commands'),
      status.installed ? 'xopcbot gateway service-start  # start the service' : 'xopcbot gateway install        # install the service',
      'xopcbot gateway stop           # stop (process)',
      'xopcbot gateway restart        # restart (process)',
      'xopcbot gateway uninstall      # remove the service',
    )
    console.log(lines.join('\n'))
    return code
  },
})
