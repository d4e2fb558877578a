import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import { fakeMcpServer } from './mcp-tools'

export interface FakeMcpHttp {
  url: string
  /** the headers of every request, in order */
  headers: Headers[]
  stop(): void
  /** listens again on the same port after `stop()` */
  restart(): void
}

/** A fake MCP server over Streamable HTTP on 127.0.0.1 (stateless: a server and transport per request). */
export function startFakeMcpHttp(name = 'http'): FakeMcpHttp {
  const headers: Headers[] = []
  const serve = (port: number) => Bun.serve({
    hostname: '127.0.0.1',
    port,
    idleTimeout: 60,
    async fetch(request) {
      if (new URL(request.url).pathname !== '/mcp') return new Response('not found', { status: 404 })
      headers.push(request.headers)
      const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
      await fakeMcpServer(name).connect(transport)
      return transport.handleRequest(request)
    },
  })
  let server = serve(0)
  const port = server.port!
  return { url: `http://127.0.0.1:${port}/mcp`, headers, stop: () => void server.stop(true), restart: () => void (server = serve(port)) }
}
