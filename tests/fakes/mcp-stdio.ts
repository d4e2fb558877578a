/**
 * A fake MCP server over stdio: `bun tests/fakes/mcp-stdio.ts [name]`. MCP_FAKE_DELAY_MS (from its configured
 * env) delays the start of the protocol, like a server that is slow to come up; MCP_FAKE_STUBBORN=1 makes it
 * ignore SIGTERM and the end of its stdin.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { fakeMcpServer } from './mcp-tools'

const delay = Number(process.env.MCP_FAKE_DELAY_MS ?? 0)
if (delay > 0) await Bun.sleep(delay)
const server = fakeMcpServer(process.argv[2] ?? 'stdio')
await server.connect(new StdioServerTransport())
if (process.env.MCP_FAKE_STUBBORN === '1') {
  // A server that outlives its stdin and ignores SIGTERM: only SIGKILL ends it.
  setInterval(() => {}, 1000)
  process.on('SIGTERM', () => {})
} else {
  // The gateway closes our stdin when it disconnects: end then, as real stdio servers do.
  process.stdin.on('end', () => process.exit(0))
}
