import { startFakeLlm, type FakeLlm } from '../fakes/llm'
import { startFakeTelegram, type FakeTelegram } from '../fakes/telegram'
import { startWebhookReceiver, type FakeReceiver } from '../fakes/webhook-receiver'
import { freePort, startGateway, tempHome, writeConfig, type RunningGateway } from './gateway'

export const WEBHOOK_SECRET = 'a-webhook-secret-of-some-length'

export interface World {
  llm: FakeLlm
  telegram: FakeTelegram
  receiver: FakeReceiver
  home: string
  port: number
  config: Record<string, any>
  start: () => Promise<RunningGateway>
  stop: () => void
}

/**
 * A config with the fake LLM, a Telegram channel on the fake Bot API and a webhook channel on a receiver.
 * Telegram direct messages are open to everyone (`dmPolicy: "open"`), so that tests about something else need
 * no pairing; `openDms: false` leaves the channel's access settings at their (closed) defaults.
 * `telegramListening: false` reserves the fake Bot API's port but leaves it down (`w.telegram.start()` brings it
 * up); `env` is added to the gateway's environment.
 */
export async function makeWorld({
  telegram = {},
  agent = {},
  webhookRetry = { attempts: 3, baseDelayMs: 50 },
  openDms = true,
  telegramListening = true,
  env = {},
}: {
  telegram?: Record<string, unknown>
  agent?: Record<string, unknown>
  webhookRetry?: Record<string, number>
  openDms?: boolean
  telegramListening?: boolean
  env?: Record<string, string>
} = {}): Promise<World> {
  const llm = startFakeLlm()
  const fakeTelegram = startFakeTelegram({ listening: telegramListening })
  const receiver = startWebhookReceiver(WEBHOOK_SECRET)
  const home = tempHome()
  const port = await freePort()
  const config = {
    gateway: { host: '127.0.0.1', port },
    agent: { model: 'fake/echo', maxRetries: 0, ...agent },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } },
    channels: {
      telegram: { enabled: true, token: fakeTelegram.token, apiRoot: fakeTelegram.url, ...(openDms ? { dmPolicy: 'open' } : {}), ...telegram },
      myapp: { type: 'webhook', url: receiver.url, secret: WEBHOOK_SECRET, retry: webhookRetry },
      off: { type: 'webhook', enabled: false, url: receiver.url, secret: WEBHOOK_SECRET },
    },
  }
  writeConfig(home, config)
  return {
    llm,
    telegram: fakeTelegram,
    receiver,
    home,
    port,
    config,
    start: () => startGateway({ home, port, env }),
    stop: () => {
      llm.stop()
      fakeTelegram.stop()
      receiver.stop()
    },
  }
}

/**
 * The worlds and gateways a test file starts, stopped after each test: `start` makes a world and starts its
 * gateway; `track`/`trackGateway` register ones a test made itself. Call `cleanUp` in an afterEach.
 */
export function worldTracker() {
  const worlds: World[] = []
  const gateways: RunningGateway[] = []
  const track = (w: World) => (worlds.push(w), w)
  const trackGateway = (g: RunningGateway) => (gateways.push(g), g)
  return {
    track,
    trackGateway,
    async start(options: Parameters<typeof makeWorld>[0] = {}) {
      const w = track(await makeWorld(options))
      const gateway = trackGateway(await w.start())
      return { w, gateway, url: gateway.url }
    },
    async cleanUp() {
      for (const g of gateways.splice(0)) if (g.proc.exitCode === null) await g.stop()
      for (const w of worlds.splice(0)) w.stop()
    },
  }
}
