// The physical reference for /health throughput: Bun.serve answering the same JSON with nothing else.
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.argv[2] ?? 0),
  fetch: () => Response.json({ status: 'healthy', uptime: 1, version: '0.0.0' }),
})
console.log(server.port)
