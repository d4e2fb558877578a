import { Elysia } from 'elysia'
import type { AppDeps } from './app'

/** GET /api/status: what this gateway process is and where it listens. */
export function statusRoutes(deps: Pick<AppDeps, 'version' | 'startedAt' | 'now' | 'info'>) {
  return new Elysia({ name: 'status', prefix: '/api' }).get('/status', function status() {
    return {
      status: 'ok',
      version: deps.version,
      pid: process.pid,
      started_at: new Date(deps.startedAt).toISOString(),
      uptime: Math.floor((deps.now() - deps.startedAt) / 1000),
      config_path: deps.info.configPath,
      data_dir: deps.info.dataDir,
      bind: { host: deps.info.host, port: deps.info.port },
    }
  })
}
