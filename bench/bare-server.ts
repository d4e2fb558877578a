// The physical reference for /health throughput: Bun.serve answering the same JSON with nothing else.
// With "--request-id" it also sets an X-Request-Id header, as the gateway does on every response.
const withRequestId = process.argv.includes('--request-id')
const body = { status: 'healthy', uptime: 1, version: '0.0.0' }
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.argv[2] ?? 0),
  fetch: withRequestId ? () => Response.json(body, { headers: { 'x-request-id': crypto.randomUUID() } }) : () => Response.json(body),
})
console.log(server.port)
