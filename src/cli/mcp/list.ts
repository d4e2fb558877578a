import { defineCommand } from 'citty'
import { z } from 'zod'
import { loadConfig } from '../../config/load'
import { resolvePaths } from '../../config/paths'
import { CliError, ExitCode } from '../../errors'
import { findGateway } from '../../lifecycle/control'
import { unverifiedLockMessage } from '../../lifecycle/lock'
import { apiClient } from '../api-client'
import { configArg, parseFlags, PathFlag } from '../args'
import { table } from '../output'

/** A server as listed: GET /api/status's `mcp` entry, or what the config says. */
type ServerView = { state: string; tools: string[]; error?: string }

const args = { ...configArg, json: { type: 'boolean', description: 'Machine-readable output' } } as const

/** What the config says when no gateway runs: the servers are configured, not connected. */
function fromConfig(configFlag: string | undefined): Record<string, ServerView> {
  const paths = resolvePaths({ env: process.env, configFlag })
  const { config } = loadConfig(paths.configPath, process.env, { needs: ['mcp'] })
  return Object.fromEntries(Object.entries(config.mcp.servers).map(([name, server]) => [name, { state: server.enabled ? 'not connected' : 'disabled', tools: [] }]))
}

export default defineCommand({
  meta: { name: 'list', description: "The MCP servers: the running gateway's state and tools, else the configured ones" },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const target = findGateway(flags.config)
    if (target.state.state === 'unverified') throw new CliError(unverifiedLockMessage(target.lockPath, target.state.info))
    const running = target.state.state === 'running'
    const servers = running ? ((await apiClient(flags.config)<{ mcp?: Record<string, ServerView> }>('GET', '/api/status')).mcp ?? {}) : fromConfig(flags.config)
    const source = running ? 'gateway' : 'config'
    if (flags.json) {
      console.log(JSON.stringify({ source, servers }))
      return ExitCode.OK
    }
    if (!running) console.log('ℹ️ The gateway is not running: these are the configured servers.')
    if (!Object.keys(servers).length) console.log('No MCP servers configured (mcp.servers in the config).')
    else {
      console.log(
        table([
          ['NAME', 'STATE', 'TOOLS', 'ERROR'],
          ...Object.entries(servers).map(([name, s]) => [name, s.state, s.tools.length ? s.tools.join(',') : '-', s.error ?? '']),
        ]),
      )
    }
    return ExitCode.OK
  },
})
