import { Elysia } from 'elysia'
import type { ReloadResult } from '../config/reload'

/**
 * POST /api/config/reload: reads the config file again and applies what can change while the gateway runs. 200
 * with what was applied and what needs a restart; an invalid file is a 422 CONFIG_INVALID naming the key, and
 * nothing changes (the gateway's `reload` decides both; this only turns it into HTTP).
 */
export function configRoutes(reload: (reason: string) => Promise<ReloadResult | null>) {
  return new Elysia({ name: 'config', prefix: '/api/config' }).post('/reload', async function reloadConfig() {
    const result = (await reload('POST /api/config/reload')) ?? { applied: [], restart_required: [], unchanged: true }
    return { status: 'ok', ...result }
  })
}
