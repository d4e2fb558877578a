import { join } from 'node:path'
import { Config } from '../../src/config/schema'
import { Gateway } from '../../src/lifecycle/gateway'
import type { World } from './channels'
import { freePort, tempHome } from './gateway'

export interface Route {
  method: string
  path: string
}

/**
 * The routes of a fully wired gateway (every area of `world` mounted, the local control routes too), read from
 * the app itself: a suite that goes through them covers a new route without a new test.
 */
export async function enumerateRoutes(world: World, token: string): Promise<Route[]> {
  const home = tempHome()
  const config = Config.parse({ ...world.config, gateway: { ...world.config.gateway, port: await freePort(), auth: { token } }, logging: { level: 'warn' } })
  const gateway = new Gateway({
    config,
    configPath: join(home, 'config.json'),
    console: false,
    control: { nonce: () => 'n'.repeat(32), stop() {}, restart() {}, reloadToken() {} },
    loadConfig: () => config,
  })
  gateway.start()
  const routes = gateway.app!.routes.map((r) => ({ method: r.method, path: r.path }))
  await gateway.stop('routes enumerated')
  return routes
}

/** A concrete path for a route pattern (`myapp` is the webhook channel of the world). */
export const concrete = (path: string) => path.replace(':channel', 'myapp').replace(/:[a-z]+/g, 'x1')
