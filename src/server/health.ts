import { Elysia } from 'elysia'
import type { AppDeps } from './deps'

/** GET /health (SPEC §6): never needs auth; 503 "draining" while the gateway stops. */
export function healthRoutes(deps: Pick<AppDeps, 'version' | 'startedAt' | 'now' | 'isDraining'>) {
  return new Elysia({ name: 'health' }).get('/health', function health({ set }) {
    const uptime = Math.floor((deps.now() - deps.startedAt) / 1000)
    if (deps.isDraining()) {
      set.status = 503
      return { status: 'draining', uptime, version: deps.version }
    }
    return { status: 'healthy', uptime, version: deps.version }
  })
}
