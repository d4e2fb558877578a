import { afterEach, expect, test } from 'bun:test'
import { makeWorld, worldTracker, type World } from './helpers/channels'
import { runCli, type RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

// Every channel supervises its own connection: the real gateway against the fake Bot API, which comes up late,
// goes away and comes back on the same port. Real time, with the reconnect waits shortened by the test-only
// XOPCBOT_TEST_CHANNEL_BACKOFF_MS ("<initialMs>,<maxMs>"; ±20 % jitter on top).

const SHORT_BACKOFF = { XOPCBOT_TEST_CHANNEL_BACKOFF_MS: '100,400' }

const worlds = worldTracker()
const world = worlds.start
afterEach(worlds.cleanUp)

interface ChannelStatus {
  type: string
  state: string
  error?: string
  next_retry_at?: string
  retry_in_ms?: number
  failures?: number
}
const telegramStatus = async (gateway: RunningGateway): Promise<ChannelStatus> =>
  ((await (await fetch(`${gateway.url}/api/status`)).json()) as { channels: Record<string, ChannelStatus> }).channels.telegram!
const untilState = (gateway: RunningGateway, state: string, extra: (s: ChannelStatus) => boolean = () => true) =>
  waitFor(
    async () => {
      const status = await telegramStatus(gateway)
      return status.state === state && extra(status) ? status : null
    },
    { what: `the Telegram channel to be ${state}`, timeoutMs: 15_000 },
  )
const repliesTo = (w: World, text: string) => w.telegram.sent.filter((m) => m.text === `echo: ${text}`)

test('the Bot API comes up 2 s after the gateway: retrying (with when and why, never the token), then running, then answering', async () => {
  const { w, gateway } = await world({ telegramListening: false, env: SHORT_BACKOFF })
  const gatewayUp = Date.now()
  const retrying = await untilState(gateway, 'retrying')
  expect(retrying.error).toStartWith(`cannot reach 127.0.0.1:${w.telegram.port}: `)
  expect(retrying.retry_in_ms).toBeWithin(0, 481)
  expect(Date.parse(retrying.next_retry_at!)).toBeGreaterThan(gatewayUp - 1000)
  expect(retrying.failures).toBeGreaterThanOrEqual(1)

  const text = await runCli(['gateway', 'status'], { home: w.home })
  expect(text.code).toBe(0)
  expect(text.stdout).toContain('📡 Channels:')
  expect(text.stdout).toMatch(new RegExp(`\\ntelegram: retrying \\((next in \\d+ s|trying now)\\): cannot reach 127\\.0\\.0\\.1:${w.telegram.port}: `))
  expect(text.stdout).toContain('\nmyapp (webhook): running\n')
  expect(text.stdout).toContain('\noff (webhook): disabled\n')
  const json = JSON.parse((await runCli(['gateway', 'status', '--json'], { home: w.home })).stdout)
  expect(json.channels.telegram).toMatchObject({ type: 'telegram', state: 'retrying', error: expect.stringContaining('cannot reach 127.0.0.1') })
  const everything = (await (await fetch(`${gateway.url}/api/status`)).text()) + text.stdout + JSON.stringify(json) + gateway.output()
  expect(everything).not.toContain(w.telegram.token)

  // The scenario: the Bot API (the network) comes up 2 s after the gateway. Not a synchronisation — what
  // follows polls for its conditions.
  await Bun.sleep(Math.max(0, gatewayUp + 2000 - Date.now()))
  w.telegram.start()
  expect(await untilState(gateway, 'running')).toEqual({ type: 'telegram', state: 'running' })
  expect((await runCli(['gateway', 'status'], { home: w.home })).stdout).toContain('\ntelegram: running\n')

  w.telegram.pushMessage(4242, 'hello once it is up')
  await waitFor(() => repliesTo(w, 'hello once it is up')[0], { what: 'the reply' })
  expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['hello once it is up'])
}, 60_000)

test('the Bot API goes away mid-run and comes back on the same port: retrying, running again; every message answered exactly once', async () => {
  const { w, gateway } = await world({ env: SHORT_BACKOFF })
  await untilState(gateway, 'running')
  w.telegram.pushMessage(4242, 'before the outage')
  await waitFor(() => repliesTo(w, 'before the outage')[0], { what: 'the reply before the outage' })

  w.telegram.stop()
  const retrying = await untilState(gateway, 'retrying')
  expect(retrying.error).not.toContain(w.telegram.token)
  w.telegram.pushMessage(4242, 'during the outage')
  // It keeps trying while the API is away.
  await untilState(gateway, 'retrying', (s) => (s.failures ?? 0) >= 3)

  w.telegram.start()
  await untilState(gateway, 'running')
  await waitFor(() => repliesTo(w, 'during the outage')[0], { what: 'the reply to the message sent during the outage' })
  w.telegram.pushMessage(4242, 'after the outage')
  await waitFor(() => repliesTo(w, 'after the outage')[0], { what: 'the reply after the outage' })

  // One chat is handled in order, so a repeat of an earlier message would have come before the last reply.
  for (const text of ['before the outage', 'during the outage', 'after the outage']) expect({ text, replies: repliesTo(w, text).length }).toEqual({ text, replies: 1 })
  expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['before the outage', 'during the outage', 'after the outage'])
  expect(w.telegram.sent.filter((m) => m.chat_id === '4242')).toHaveLength(3)
}, 60_000)

test('a stop while the channel waits to retry exits at once, without waiting out the backoff', async () => {
  const { w, gateway } = await world({ telegramListening: false, env: { XOPCBOT_TEST_CHANNEL_BACKOFF_MS: '30000,60000' } })
  await untilState(gateway, 'retrying', (s) => (s.retry_in_ms ?? 0) > 10_000)
  const started = performance.now()
  expect(await gateway.stop()).toBe(0)
  const tookMs = performance.now() - started
  // The gateway gives its channels up to 3 s to stop; a backoff wait must not use any of it.
  expect(tookMs).toBeLessThan(2000)
  expect(gateway.output()).toContain('gateway stopped')
  expect(w.telegram.calls).toEqual([])
}, 60_000)

test('a rejected bot token (401) is failed for good, with the reason, and not retried', async () => {
  const w = await makeWorld({ env: SHORT_BACKOFF })
  worlds.track(w)
  w.telegram.failures.set('getMe', [{ error_code: 401, description: 'Unauthorized' }])
  const gateway = await w.start()
  worlds.trackGateway(gateway)
  const failed = await untilState(gateway, 'failed')
  expect(failed).toEqual({ type: 'telegram', state: 'failed', error: 'Telegram rejected the bot token (401 Unauthorized); check channels.telegram.token' })
  const text = await runCli(['gateway', 'status'], { home: w.home })
  expect(text.stdout).toContain('\ntelegram: failed: Telegram rejected the bot token (401 Unauthorized); check channels.telegram.token\n')
  // Absence shows only as time passing: 1 s is several of these backoffs, and the next getMe would succeed.
  await Bun.sleep(1000)
  expect(w.telegram.calls.map((c) => c.method)).toEqual(['getMe'])
  expect(await telegramStatus(gateway)).toEqual(failed)
  expect(gateway.output()).toContain('channel failed; not retrying')
}, 60_000)
