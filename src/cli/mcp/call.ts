import { defineCommand } from 'citty'
import { z } from 'zod'
import { loadConfig } from '../../config/load'
import { resolvePaths } from '../../config/paths'
import { CliError, ExitCode, UsageError } from '../../errors'
import { Redactor, secretsOf } from '../../logging/redact'
import { configArg, flag, parseFlags, PathFlag } from '../args'

const args = {
  ...configArg,
  server: { type: 'positional', description: 'Server name (mcp.servers.<name>)', required: true },
  tool: { type: 'positional', description: "The server's own tool name (without the <server>__ prefix)", required: true },
  args: { type: 'string', description: 'Tool arguments as a JSON object (default {})', valueHint: 'json' },
} as const

const JsonObject = flag(
  z.string().transform((text, ctx) => {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(error as Error).message})` })
      return z.NEVER
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object such as \'{"text":"hi"}\'' })
      return z.NEVER
    }
    return value as Record<string, unknown>
  }),
)

export default defineCommand({
  meta: { name: 'call', description: 'Run one tool of an MCP server by hand (connects to the server directly); exit 1 on a tool error' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), args: JsonObject.optional() })
    const [serverName, toolName, extra] = parsed._.filter((word) => word !== '')
    if (!serverName || !toolName) throw new UsageError('usage: xopcbot mcp call <server> <tool> [--args \'<JSON object>\']')
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const paths = resolvePaths({ env: process.env, configFlag: flags.config })
    const { config } = loadConfig(paths.configPath, process.env, { needs: ['mcp'] })
    const server = config.mcp.servers[serverName]
    const known = Object.keys(config.mcp.servers)
    if (!server) throw new CliError(`There is no MCP server "${serverName}" in ${paths.configPath} (configured: ${known.length ? known.join(', ') : 'none'})`)
    if (server.tools && !server.tools.includes(toolName)) {
      throw new CliError(`The tool "${toolName}" is not in mcp.servers.${serverName}.tools (${server.tools.join(', ') || 'empty'}), so the assistant cannot use it either`)
    }
    // What comes back from the server may quote its headers or env: they are secrets here as in the gateway.
    const redactor = new Redactor()
    redactor.setSecrets(secretsOf(config))
    const { connectMcp, resultOf } = await import('../../mcp/client')
    let connection: Awaited<ReturnType<typeof connectMcp>>
    try {
      connection = await connectMcp(server)
    } catch (error) {
      throw new CliError(redactor.text(`Cannot connect to the MCP server "${serverName}": ${(error as Error).message}`))
    }
    try {
      const timeout = AbortSignal.timeout(server.timeoutMs)
      const result = await Promise.race([
        connection.client.callTool({ name: toolName, arguments: flags.args ?? {}, options: { signal: timeout } }),
        new Promise<never>((_, reject) => timeout.addEventListener('abort', () => reject(new Error(`no answer within ${server.timeoutMs} ms (mcp.servers.${serverName}.timeoutMs)`)), { once: true })),
      ]).catch((error: Error) => {
        throw new CliError(redactor.text(`The tool ${serverName}__${toolName} failed: ${error.message}`))
      })
      const value = resultOf(result)
      const text = redactor.text(typeof value === 'string' ? value : JSON.stringify(value, null, 2))
      if (result.isError) {
        console.error(`❌ The tool ${serverName}__${toolName} reported an error: ${text}`)
        return ExitCode.FAILURE
      }
      console.log(text)
      return ExitCode.OK
    } finally {
      await connection.close()
    }
  },
})
