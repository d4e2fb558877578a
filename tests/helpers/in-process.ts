import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Config } from '../../src/config/schema'
import { Gateway } from '../../src/lifecycle/gateway'
import { makeWorld, type World } from './channels'
import { tempHome } from './gateway'

/** A whole gateway (fake LLM, fake Telegram, webhook receiver) built in this process, with a token. */
export async function inProcessGateway(token: string): Promise<{ gateway: Gateway; world: World; stop: () => Promise<void> }> {
  const world = await makeWorld()
  const home = tempHome()
  mkdirSync(join(home, 'data'), { recursive: true })
  const config = Config.parse({ ...world.config, gateway: { ...world.config.gateway, auth: { token } }, logging: { level: 'warn' } })
  const gateway = new Gateway({ config, configPath: join(home, 'data', 'config.json'), console: false })
  gateway.start()
  return {
    gateway,
    world,
    stop: async () => {
      await gateway.stop('test')
      world.stop()
    },
  }
}
