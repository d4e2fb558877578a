import { afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConsola } from 'consola/core'
import type { Incoming } from '../src/channels/channel'
import { reportOf } from '../src/channels/manager'
import { PairingStore } from '../src/channels/pairing'
import { backoffDelay, backoffFromEnv, DEFAULT_BACKOFF, Supervisor, type Fault, type Session } from '../src/channels/supervisor'
import { TelegramSender, TelegramSource } from '../src/channels/telegram'
import { describeChannel } from '../src/cli/gateway/status'
import { TelegramChannel as TelegramConfig } from '../src/config/schema'
import { openDatabase } from '../src/storage/db'
import { startFakeTelegram, type FakeTelegram } from './fakes/telegram'
import { FakeClock } from './helpers/clock'
import { waitFor } from './helpers/wait'

// The supervision loop every channel connection runs in, on a fake clock: no test here waits real seconds.

const silent = () => createConsola({ reporters: [] })
const transient = (error: unknown): Fault => ({ reason: error instanceof Error ? error.message : String(error) })

/** A supervisor whose session does what `script` says, attempt after attempt; the default fails every time. */
function supervised({
  classify = transient,
  random = () => 0.5,
  script = () => Promise.reject(new Error('cannot reach api.example.org: refused')),
}: { classify?: (error: unknown) => Fault; random?: () => number; script?: (attempt: number, session: Session) => Promise<void> } = {}) {
  const clock = new FakeClock()
  const supervisor = new Supervisor({ channel: 'test', log: silent(), classify, timer: clock, random })
  let attempts = 0
  supervisor.start((session) => script(++attempts, session))
  return { clock, supervisor, attempts: () => attempts }
}

/** Lets `count` failures happen, moving the clock past each wait; returns the waits. */
async function failures(clock: FakeClock, count: number) {
  for (let i = 1; i <= count; i++) {
    await clock.sleepsReach(i)
    if (i < count) clock.advance(clock.sleeps[i - 1]!)
  }
  return clock.sleeps.slice(0, count)
}

describe('backoffDelay', () => {
  test('1 s doubling to a cap of 60 s', () => {
    const middle = () => 0.5
    expect(Array.from({ length: 10 }, (_, i) => backoffDelay(i + 1, DEFAULT_BACKOFF, middle))).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000])
    // No overflow after days of failures.
    expect(backoffDelay(10_000, DEFAULT_BACKOFF, middle)).toBe(60_000)
  })

  test('jitter stays within ±20 % and does spread the waits', () => {
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0)).toBe(800)
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0.999999)).toBe(1200)
    expect(backoffDelay(9, DEFAULT_BACKOFF, () => 0)).toBe(48_000)
    expect(backoffDelay(9, DEFAULT_BACKOFF, () => 0.999999)).toBe(72_000)
    for (const failures of [1, 3, 7, 20]) {
      const base = Math.min(60_000, 1000 * 2 ** (failures - 1))
      const seen = new Set<number>()
      for (let i = 0; i < 500; i++) {
        const delay = backoffDelay(failures, DEFAULT_BACKOFF)
        expect(delay).toBeGreaterThanOrEqual(base * 0.8)
        expect(delay).toBeLessThanOrEqual(base * 1.2)
        seen.add(delay)
      }
      expect(seen.size).toBeGreaterThan(50)
    }
  })

  test('XOPCBOT_TEST_CHANNEL_BACKOFF_MS: "<initialMs>,<maxMs>", or a message that says what is wrong', () => {
    expect(backoffFromEnv(undefined)).toBeNull()
    expect(backoffFromEnv('')).toBeNull()
    expect(backoffFromEnv('50,400')).toEqual({ initialMs: 50, maxMs: 400, jitter: 0.2 })
    for (const bad of ['50', '400,50', '0,10', 'a,b', '50,400,1']) expect(backoffFromEnv(bad)).toContain('XOPCBOT_TEST_CHANNEL_BACKOFF_MS must be')
  })
})

describe('Supervisor', () => {
  const running: Supervisor[] = []
  afterEach(async () => {
    for (const supervisor of running.splice(0)) await supervisor.stop()
  })
  const track = <T extends { supervisor: Supervisor }>(setup: T) => (running.push(setup.supervisor), setup)

  test('a session that keeps failing is retried forever, the wait doubling to the cap; the state says why and when', async () => {
    const { clock, supervisor, attempts } = track(supervised())
    expect(supervisor.state()).toEqual({ state: 'starting' })
    const waits = await failures(clock, 10)
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000])
    expect(attempts()).toBe(10)
    expect(supervisor.state()).toEqual({ state: 'retrying', error: 'cannot reach api.example.org: refused', nextRetryAt: clock.now() + 60_000, failures: 10 })
    // As /api/status shows it, 20 s into the wait.
    clock.advance(20_000)
    expect(reportOf('telegram', supervisor.state(), clock.now())).toEqual({
      type: 'telegram',
      state: 'retrying',
      error: 'cannot reach api.example.org: refused',
      next_retry_at: new Date(clock.now() + 40_000).toISOString(),
      retry_in_ms: 40_000,
      failures: 10,
    })
    expect(describeChannel(reportOf('telegram', supervisor.state(), clock.now()))).toBe('retrying (next in 40 s): cannot reach api.example.org: refused')
    // Nothing happens before the wait is over.
    clock.advance(39_999)
    expect(attempts()).toBe(10)
    clock.advance(1)
    await clock.sleepsReach(11)
    expect(attempts()).toBe(11)
  })

  test('the jitter of real waits stays within ±20 %', async () => {
    const { clock } = track(supervised({ random: Math.random }))
    const waits = await failures(clock, 9)
    waits.forEach((wait, i) => {
      const base = Math.min(60_000, 1000 * 2 ** i)
      expect(wait).toBeGreaterThanOrEqual(base * 0.8)
      expect(wait).toBeLessThanOrEqual(base * 1.2)
    })
  })

  test('a session that gets going resets the backoff; its next failure waits the first wait again', async () => {
    const { clock, supervisor } = track(
      supervised({
        script: async (attempt, { ready }) => {
          if (attempt === 4) {
            ready()
            throw new Error('lost the connection')
          }
          throw new Error(`attempt ${attempt} failed`)
        },
      }),
    )
    await failures(clock, 3)
    clock.advance(4000)
    await clock.sleepsReach(4)
    expect(clock.sleeps).toEqual([1000, 2000, 4000, 1000])
    expect(supervisor.state()).toMatchObject({ state: 'retrying', error: 'lost the connection', failures: 1 })
  })

  test('ready() reports running, and the session keeps running until stopped', async () => {
    let ended = false
    const { clock, supervisor } = track(
      supervised({
        script: async (attempt, { ready, signal }) => {
          if (attempt === 1) throw new Error('not yet')
          ready()
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
          ended = true
        },
      }),
    )
    await failures(clock, 1)
    expect(supervisor.state().state).toBe('retrying')
    clock.advance(1000)
    await waitFor(() => supervisor.state().state === 'running', { what: 'running' })
    expect(reportOf('telegram', supervisor.state(), clock.now())).toEqual({ type: 'telegram', state: 'running' })
    await supervisor.stop()
    expect(ended).toBe(true)
    expect(supervisor.state()).toEqual({ state: 'stopped' })
  })

  test('a permanent fault ends it: failed with the reason, no wait, no second attempt', async () => {
    const { clock, supervisor, attempts } = track(
      supervised({ classify: () => ({ permanent: true, reason: 'Telegram rejected the bot token (401 Unauthorized); check channels.telegram.token' }) }),
    )
    await waitFor(() => supervisor.state().state === 'failed', { what: 'failed' })
    expect(supervisor.state()).toEqual({ state: 'failed', error: 'Telegram rejected the bot token (401 Unauthorized); check channels.telegram.token' })
    expect(describeChannel(reportOf('telegram', supervisor.state(), clock.now()))).toBe('failed: Telegram rejected the bot token (401 Unauthorized); check channels.telegram.token')
    clock.advance(3_600_000)
    await Promise.resolve()
    expect(attempts()).toBe(1)
    expect(clock.sleeps).toEqual([])
  })

  test('a wait the other side asked for (retry_after) is used instead of the backoff', async () => {
    const { clock } = track(supervised({ classify: () => ({ reason: 'Telegram error 429: Too Many Requests', retryAfterMs: 7000 }) }))
    await failures(clock, 2)
    expect(clock.sleeps).toEqual([7000, 7000])
  })

  test('stop() during a wait ends the wait at once, without moving the clock, and nothing runs again', async () => {
    const { clock, supervisor, attempts } = supervised()
    await failures(clock, 7)
    expect(clock.pending).toEqual([60_000])
    const timeBefore = clock.now()
    await supervisor.stop()
    expect(clock.now()).toBe(timeBefore)
    expect(clock.pending).toEqual([])
    expect(supervisor.state()).toEqual({ state: 'stopped' })
    clock.advance(3_600_000)
    await Promise.resolve()
    expect(attempts()).toBe(7)
    expect(clock.sleeps).toHaveLength(7)
  })

  test('stop() aborts a session in progress through its signal; a later start begins afresh', async () => {
    let aborted = 0
    const clock = new FakeClock()
    const supervisor = new Supervisor({ channel: 'test', log: silent(), classify: transient, timer: clock, random: () => 0.5 })
    const session = ({ signal }: Session) =>
      new Promise<void>((_, reject) =>
        signal.addEventListener('abort', () => {
          aborted++
          reject(new Error('aborted'))
        }),
      )
    supervisor.start(session)
    await supervisor.stop()
    expect(aborted).toBe(1)
    expect(supervisor.state()).toEqual({ state: 'stopped' })
    expect(clock.sleeps).toEqual([])
    supervisor.start(session)
    expect(supervisor.state()).toEqual({ state: 'starting' })
    await supervisor.stop()
    expect(aborted).toBe(2)
  })
})

describe('TelegramChannel, supervised, against the fake Bot API on a fake clock', () => {
  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const undo of cleanup.splice(0).reverse()) await undo()
  })

  function channel(fake: FakeTelegram) {
    const clock = new FakeClock()
    const accepted: Incoming[] = []
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-supervise-')), 'xopcbot.db'))
    let offset: number | null = null
    const config = TelegramConfig.parse({ type: 'telegram', enabled: true, token: fake.token, apiRoot: fake.url, dmPolicy: 'open' })
    const telegram = new TelegramSource('telegram', config, {
      sender: new TelegramSender('telegram', config, { pollTimeoutSeconds: 1 }),
      acceptUpdates: (messages, next) => {
        accepted.push(...messages)
        offset = next
      },
      storedOffset: () => offset,
      pairing: new PairingStore(db),
      log: silent(),
      timer: clock,
    })
    cleanup.push(() => db.close(), () => telegram.stop())
    return { telegram, clock, accepted }
  }

  test('a Bot API that is down at start: retrying with a reason that names the host and not the token; it comes up; running; messages arrive', async () => {
    const fake = startFakeTelegram({ listening: false })
    cleanup.push(() => fake.stop())
    const { telegram, clock, accepted } = channel(fake)
    await telegram.start()
    await clock.sleepsReach(1)
    const state = telegram.state()
    if (state.state !== 'retrying') throw new Error(`expected retrying, got ${JSON.stringify(state)}`)
    expect(state.error).toStartWith(`cannot reach 127.0.0.1:${fake.port}: `)
    expect(state.error).not.toContain(fake.token)
    expect(state.error).not.toContain('/bot')
    clock.advance(clock.sleeps[0]!)
    await clock.sleepsReach(2)
    const [first, second] = clock.sleeps as [number, number]
    expect(first).toBeWithin(800, 1201)
    expect(second).toBeWithin(1600, 2401)
    fake.start()
    clock.advance(clock.sleeps[1]!)
    await waitFor(() => telegram.state().state === 'running', { what: 'running' })
    expect(fake.calls.map((c) => c.method).slice(0, 3)).toEqual(['getMe', 'deleteWebhook', 'getUpdates'])
    fake.pushMessage(42, 'hello after the outage')
    await waitFor(() => accepted.find((m) => m.content === 'hello after the outage'), { what: 'the message' })
  })

  test('a rejected token (401) is failed for good: one getMe, no wait, and the reason says what to fix', async () => {
    const fake = startFakeTelegram()
    cleanup.push(() => fake.stop())
    fake.failures.set('getMe', [{ error_code: 401, description: 'Unauthorized' }])
    const { telegram, clock } = channel(fake)
    await telegram.start()
    await waitFor(() => telegram.state().state === 'failed', { what: 'failed' })
    expect(telegram.state()).toEqual({ state: 'failed', error: 'Telegram rejected the bot token (401 Unauthorized); check channels.telegram.token' })
    expect(clock.sleeps).toEqual([])
    clock.advance(3_600_000)
    await Promise.resolve()
    expect(fake.calls.map((c) => c.method)).toEqual(['getMe'])
  })

  test('a connection lost while polling: retrying, then running again on the same offset; stop() during the wait is immediate', async () => {
    const fake = startFakeTelegram()
    cleanup.push(() => fake.stop())
    const { telegram, clock, accepted } = channel(fake)
    await telegram.start()
    fake.pushMessage(7, 'before')
    await waitFor(() => accepted.length === 1, { what: 'the first message' })
    expect(telegram.state()).toEqual({ state: 'running' })
    fake.stop()
    await clock.sleepsReach(1)
    expect(telegram.state()).toMatchObject({ state: 'retrying', failures: 1 })
    fake.pushMessage(7, 'during')
    fake.start()
    clock.advance(clock.sleeps[0]!)
    await waitFor(() => accepted.length === 2, { what: 'the message sent during the outage' })
    expect(accepted.map((m) => m.content)).toEqual(['before', 'during'])
    expect(telegram.state()).toEqual({ state: 'running' })

    fake.stop()
    await clock.sleepsReach(2)
    // The backoff started afresh after the recovery: a first wait again.
    expect(clock.sleeps[1]).toBeWithin(800, 1201)
    const started = performance.now()
    await telegram.stop()
    expect(performance.now() - started).toBeLessThan(500)
    expect(telegram.state()).toEqual({ state: 'stopped' })
  })
})
