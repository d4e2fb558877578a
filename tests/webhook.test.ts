import { describe, expect, test } from 'bun:test'
import { createHmac } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sign, verifySignature, WebhookSource } from '../src/channels/webhook'
import { Config } from '../src/config/schema'
import { AppError } from '../src/errors'
import { createLogger } from '../src/logging/logger'
import { outboundFetch, RedirectRefused } from '../src/net/outbound'
import { InboundQueue } from '../src/messages/queue'
import { webhookReply } from '../src/server/webhook-routes'
import { openDatabase } from '../src/storage/db'
import { WEBHOOK_REPLAY_WINDOW_MS, WebhookEventLog } from '../src/storage/webhook-events'
import { startWebhookReceiver } from './fakes/webhook-receiver'

const SECRET = 'a-webhook-secret-of-some-length'
const T0 = Date.UTC(2026, 0, 1, 12) // a fixed "now"
const MINUTE = 60_000

function setup() {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-webhook-')), 'xopcbot.db'))
  const { log } = createLogger({ level: 'error', console: false })
  // A queue without a worker stores what it accepts and processes nothing, so no agent is needed.
  const queue = new InboundQueue({ db })
  const events = new WebhookEventLog(db)
  const clock = { now: T0 }
  const config = Config.parse({ channels: { myapp: { type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: SECRET } } }).channels.myapp!
  if (config.type !== 'webhook') throw new Error('unreachable')
  const channel = new WebhookSource('myapp', config, {
    accept: (message, alongside) => queue.acceptAll([message], 'webhook', alongside)[0]!,
    events,
    log,
    now: () => clock.now,
  })
  const messages = () => (db.query('SELECT COUNT(*) AS n FROM inbound_messages').get() as { n: number }).n
  return { db, events, clock, channel, messages }
}

/** A request as a sender signs it at `nowMs`. */
function request(content: string, nowMs: number, eventId?: string) {
  const raw = JSON.stringify({ event: 'message', data: { chat_id: 'c', content } })
  const timestamp = Math.floor(nowMs / 1000)
  const headers = new Headers({ 'x-xopcbot-timestamp': String(timestamp), 'x-xopcbot-signature': sign(SECRET, timestamp, raw) })
  if (eventId) headers.set('x-xopcbot-event-id', eventId)
  return { raw, headers, body: JSON.parse(raw) }
}

/** What the route answers: the source's result as the HTTP reply (a refusal is thrown). */
const receive = async (channel: WebhookSource, r: ReturnType<typeof request>) => webhookReply(await channel.receive({ headers: r.headers, raw: r.raw, body: r.body }))

function unauthorized(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(AppError)
    expect((error as AppError).code).toBe('UNAUTHORIZED')
    return (error as AppError).message
  }
  throw new Error('expected a 401')
}

describe('verifySignature', () => {
  const raw = '{"event":"message"}'
  const headers = (timestamp: number | string, signature = sign(SECRET, timestamp, raw)) => new Headers({ 'x-xopcbot-timestamp': String(timestamp), 'x-xopcbot-signature': signature })
  const nowSeconds = T0 / 1000

  test('accepts a timestamp up to 300 s either way, refuses 301', () => {
    for (const skew of [-300, -1, 0, 1, 300]) expect(verifySignature(SECRET, headers(nowSeconds + skew), raw, T0)).toMatch(/^[0-9a-f]{64}$/)
    expect(unauthorized(() => verifySignature(SECRET, headers(nowSeconds - 301), raw, T0))).toContain('301 s old')
    expect(unauthorized(() => verifySignature(SECRET, headers(nowSeconds + 301), raw, T0))).toContain('301 s in the future')
  })

  test('a wrong, truncated, old-scheme or missing signature is 401, and the message never holds the expected digest', () => {
    const expected = sign(SECRET, nowSeconds, raw)
    const cases = [
      headers(nowSeconds, sign('another-secret-entirely', nowSeconds, raw)),
      headers(nowSeconds, expected.slice(0, -2)),
      headers(nowSeconds, `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`),
      headers(nowSeconds, 'nonsense'),
      new Headers({ 'x-xopcbot-timestamp': String(nowSeconds) }),
      new Headers({ 'x-xopcbot-signature': expected }),
      headers('12.5'),
    ]
    for (const given of cases) {
      const message = unauthorized(() => verifySignature(SECRET, given, raw, T0))
      expect(message).toContain('"<timestamp>.<raw body>"')
      expect(message).not.toContain(expected.slice(7, 20))
    }
    // Upper-case hex is the same digest.
    expect(verifySignature(SECRET, headers(nowSeconds, `sha256=${expected.slice(7).toUpperCase()}`), raw, T0)).toBe(expected.slice(7))
  })
})

describe('WebhookSource replay window (fake clock)', () => {
  test('an event id is a duplicate for the replay window (10 minutes, and longer than the ±300 s of timestamps), then new again', async () => {
    const { clock, channel, messages } = setup()
    expect(WEBHOOK_REPLAY_WINDOW_MS).toBeGreaterThanOrEqual(10 * MINUTE)
    expect(WEBHOOK_REPLAY_WINDOW_MS).toBeGreaterThanOrEqual((2 * 300 + 2) * 1000)
    expect((await receive(channel, request('hi', clock.now, 'evt-1'))).body).toMatchObject({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    clock.now = T0 + WEBHOOK_REPLAY_WINDOW_MS - 1000
    expect((await receive(channel, request('hi', clock.now, 'evt-1'))).body).toEqual({ status: 'ok', duplicate: true })
    clock.now = T0 + WEBHOOK_REPLAY_WINDOW_MS + 1
    expect((await receive(channel, request('hi', clock.now, 'evt-1'))).body).toMatchObject({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    expect(messages()).toBe(2)
  })

  test('the id is stored in the transaction that stores the message: when that fails, neither is kept', async () => {
    const { db, events, clock, channel, messages } = setup()
    db.run(`CREATE TRIGGER refuse BEFORE INSERT ON webhook_events BEGIN SELECT RAISE(ABORT, 'disk full'); END`)
    await expect(receive(channel, request('hi', clock.now, 'evt-1'))).rejects.toThrow('disk full')
    expect(messages()).toBe(0)
    expect(events.size()).toBe(0)
    db.run('DROP TRIGGER refuse')
    expect((await receive(channel, request('hi', clock.now, 'evt-1'))).body).toMatchObject({ message_id: expect.stringMatching(/^msg_/) })
    expect(messages()).toBe(1)
  })

  test('expired keys are pruned as new events arrive, a bounded batch at a time', () => {
    const { events } = setup()
    for (let i = 0; i < 200; i++) events.record('myapp', [`id:${i}`], T0)
    expect(events.size()).toBe(200)
    events.record('myapp', ['id:new'], T0 + WEBHOOK_REPLAY_WINDOW_MS + 1)
    expect(events.size()).toBe(200 - 64 + 1)
    for (let i = 0; i < 3; i++) events.record('myapp', [`id:later-${i}`], T0 + WEBHOOK_REPLAY_WINDOW_MS + MINUTE)
    expect(events.size()).toBe(4)
    expect(events.seen('myapp', ['id:new'], T0 + WEBHOOK_REPLAY_WINDOW_MS + MINUTE)).toBe(true)
    expect(events.seen('other', ['id:new'], T0 + WEBHOOK_REPLAY_WINDOW_MS + MINUTE)).toBe(false)
  })
})

describe('outboundFetch', () => {
  test('a redirect is refused, not followed; other answers pass through', async () => {
    const redirecting = startWebhookReceiver(SECRET)
    const elsewhere = startWebhookReceiver(SECRET)
    try {
      redirecting.redirectTo = elsewhere.url
      const error = await outboundFetch(redirecting.url, { method: 'POST', body: '{}' }).catch((e) => e)
      expect(error).toBeInstanceOf(RedirectRefused)
      expect(error.message).toBe(`${new URL(redirecting.url).origin} answered HTTP 307 (redirects are not followed)`)
      expect(elsewhere.received).toHaveLength(0)
      elsewhere.statuses.push(404)
      expect((await outboundFetch(elsewhere.url, { method: 'POST', body: '{}', redirect: 'follow' })).status).toBe(404)
      expect((await outboundFetch(elsewhere.url, { method: 'POST', body: '{}' })).status).toBe(200)
    } finally {
      redirecting.stop()
      elsewhere.stop()
    }
  })
})
