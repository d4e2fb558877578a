import type { CallToolResult, MCPClient } from '@ai-sdk/mcp'
import type { McpServerConfig } from '../config/schema'
import { StdioTransport } from './stdio'

/** How long connecting and the MCP handshake may take. */
export const CONNECT_TIMEOUT_MS = 30_000

/** A connected MCP server: its client, and a promise that resolves with a sentence when the connection is lost. */
export interface McpConnection {
  client: MCPClient
  lost: Promise<string>
  /** ends the connection for good (a tool call found the HTTP server unreachable) */
  markLost(reason: string): void
  /** closes the client; a stdio server's process is gone when it resolves */
  close(): Promise<void>
  killNow(): void
}

/**
 * Connects to one server with the AI SDK's MCP client: stdio through our own transport (see stdio.ts),
 * Streamable HTTP through the SDK's. `signal` aborts the attempt (the gateway is stopping).
 */
export async function connectMcp(server: McpServerConfig, signal?: AbortSignal): Promise<McpConnection> {
  const { createMCPClient } = await import('@ai-sdk/mcp')
  let markLost!: (reason: string) => void
  const lost = new Promise<string>((resolve) => (markLost = resolve))
  const stdio = server.transport === 'stdio' ? new StdioTransport({ command: server.command, args: server.args, env: server.env, cwd: server.cwd }) : null
  if (stdio) void stdio.exited.then(markLost)
  const timeout = AbortSignal.timeout(CONNECT_TIMEOUT_MS)
  const abort = signal ? AbortSignal.any([signal, timeout]) : timeout
  const killOnAbort = () => stdio?.killNow()
  abort.addEventListener('abort', killOnAbort, { once: true })
  try {
    const client = await createMCPClient({
      transport: server.transport === 'stdio' ? stdio! : { type: 'http', url: server.url, headers: server.headers, redirect: 'error' },
      clientName: 'xopcbot',
      initializationOptions: { signal: abort },
      // The supervisor learns of a lost connection from `lost`; what else goes wrong shows in a tool call's result.
      onUncaughtError: () => {},
    })
    return {
      client,
      lost,
      markLost,
      close: async () => {
        await client.close().catch(() => {})
        await stdio?.close()
      },
      killNow: () => stdio?.killNow(),
    }
  } catch (error) {
    await stdio?.close()
    if (timeout.aborted) throw new Error(`the server did not complete the MCP handshake within ${CONNECT_TIMEOUT_MS / 1000} s`)
    if (stdio && error instanceof Error) {
      // A process that died while connecting says more through its exit than the client's "connection closed".
      const exit = await Promise.race([stdio.exited, Bun.sleep(200).then(() => null)])
      if (exit) throw new Error(exit)
    }
    throw error
  } finally {
    abort.removeEventListener('abort', killOnAbort)
  }
}

/** What the model (or `xopcbot mcp call`) is given for a tool result: its text, or its content as it is. */
export function resultOf(result: CallToolResult): unknown {
  if ('toolResult' in result) return result.toolResult
  if (result.structuredContent !== undefined && !result.isError) return result.structuredContent
  const content = result.content
  if (content.every((part) => part.type === 'text')) return content.map((part) => (part as { text: string }).text).join('\n')
  return content
}
