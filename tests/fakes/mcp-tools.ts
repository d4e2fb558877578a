import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { join } from 'node:path'
import { z } from 'zod'

/**
 * The tools of the fake MCP servers (stdio: mcp-stdio.ts, Streamable HTTP: mcp-http.ts): a real McpServer from
 * the protocol's own SDK, so the gateway's client is tested against the real protocol.
 */
export function fakeMcpServer(name: string): McpServer {
  const server = new McpServer({ name, version: '1.0.0' })
  const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] })
  server.registerTool('echo', { description: 'Echoes the text back', inputSchema: { text: z.string() } }, ({ text: value }) => text(`echo from ${name}: ${value}`))
  server.registerTool('env', { description: 'The names of the environment variables this server sees' }, () => text(`env keys: ${Object.keys(process.env).sort().join(',')}`))
  server.registerTool('pid', { description: 'The process id of this server' }, () => text(`pid=${process.pid}`))
  server.registerTool('hang', { description: 'Never answers' }, () => new Promise<never>(() => {}))
  server.registerTool('fail', { description: 'Always answers with a tool error' }, () => ({ ...text('this tool always fails'), isError: true }))
  server.registerTool('secret', { description: 'A tool the allowlist hides' }, () => text('the secret tool ran'))
  return server
}

/** The config of a fake stdio MCP server (mcp-stdio.ts run with this same bun), for `mcp.servers.<name>`. */
export const stdioServer = (name: string, extra: Record<string, unknown> = {}) => ({ command: process.execPath, args: [join(import.meta.dir, 'mcp-stdio.ts'), name], ...extra })
