import { Elysia } from 'elysia'
import type { AppDeps } from './deps'

/** GET /health (SPEC §6): never needs auth; 503 "draining" while the gateway stops. */
export function healthRoutes(deps: Pick<AppDeps, 'version' | 'startedAt' | 'now' | 'isDraining'>) {
  // No `set` in the handler: Elysia then takes its short path to the response.
  return new Elysia({ name: 'health' }).get('/health', function health({ status }) {
    const uptime = Math.floor((deps.now() - deps.startedAt) / 1000)
    if (deps.isDraining()) return status(503, { status: 'draining', uptime, version: deps.version })
    return { status: 'healthy', uptime, version: deps.version }
  })
}
