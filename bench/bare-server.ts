// The physical reference for /health: Bun.serve answering the gateway's JSON with nothing else. Compiled by the
// benches (lib.ts ensureReferences) for the size, memory and start-up references too. Argument: the port.
const body = { status: 'healthy', uptime: 1, version: '0.0.0' }
const server = Bun.serve({ hostname: '127.0.0.1', port: Number(process.argv[2] ?? 0), fetch: () => Response.json(body) })
console.log(server.port)
