// The framework reference for /health: the smallest Elysia app answering the gateway's JSON. Argument: the port.
import { Elysia } from 'elysia'

const body = { status: 'healthy', uptime: 1, version: '0.0.0' }
const app = new Elysia().get('/health', () => body).listen({ hostname: '127.0.0.1', port: Number(process.argv[2] ?? 0) })
console.log(app.server?.port)
