import { afterEach, describe, expect, test } from 'bun:test'
import { createHmac } from 'node:crypto'
import { sign } from '../src/channels/webhook'
import { startWebhookReceiver } from './fakes/webhook-receiver'
import { makeWorld, WEBHOOK_SECRET, worldTracker } from './helpers/channels'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const worlds = worldTracker()
const world = worlds.start
afterEach(worlds.cleanUp)

const nowSeconds = () => Math.floor(Date.now() / 1000)
/** A webhook request as a sender signs it: timestamp + signature over "<timestamp>.<raw body>", and an event id if given. */
const signed = (body: unknown, { timestamp = nowSeconds(), eventId, secret = WEBHOOK_SECRET }: { timestamp?: number; eventId?: string; secret?: string } = {}) => {
  const raw = JSON.stringify(body)
  const headers: Record<string, string> = { 'x-xopcbot-timestamp': String(timestamp), 'x-xopcbot-signature': sign(secret, timestamp, raw) }
  if (eventId !== undefined) headers['x-xopcbot-event-id'] = eventId
  return { raw, headers }
}

describe('round trips', () => {
  test('a Telegram message → the agent → a reply in the same chat', async () => {
    const { w } = await world()
    w.telegram.pushMessage(4242, 'hello bot')
    const sent = await waitFor(() => w.telegram.sent.find((m) => m.chat_id === '4242'), { what: 'the reply' })
    expect(sent.text).toBe('echo: hello bot')
    expect(w.llm.calls[0]!.lastUser).toBe('hello bot')
  })

  test('/api/message → 202 → delivered to Telegram; GET /api/message/:id follows it', async () => {
    const { w, url } = await world()
    const accepted = await postJson(`${url}/api/message`, { channel: 'telegram', chat_id: '123456789', content: 'Hello from API!' })
    expect(accepted.status).toBe(202)
    const { status, message_id } = await json(accepted)
    expect(status).toBe('ok')
    expect(message_id).toMatch(/^msg_/)
    await waitFor(() => w.telegram.sent.find((m) => m.text === 'echo: Hello from API!'), { what: 'delivery' })
    const message = await waitFor(async () => {
      const m = (await json(await fetch(`${url}/api/message/${message_id}`))).message
      return m.state === 'delivered' ? m : null
    }, { what: 'delivered state' })
    expect(message).toMatchObject({ id: message_id, channel: 'telegram', chat_id: '123456789', state: 'delivered', reply: 'echo: Hello from API!' })
    const session = await json(await fetch(`${url}/api/sessions/${encodeURIComponent('telegram:123456789')}`))
    expect(session.session).toMatchObject({ channel: 'telegram', chat_id: '123456789', message_count: 2 })
  })

  test('/api/message/sync returns the reply once it was delivered', async () => {
    const { w, url } = await world()
    const response = await postJson(`${url}/api/message/sync`, { channel: 'telegram', chat_id: 77, content: 'Hello and reply!' })
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body).toMatchObject({ status: 'ok', reply: 'echo: Hello and reply!' })
    expect(w.telegram.sent.some((m) => m.chat_id === '77' && m.text === 'echo: Hello and reply!')).toBe(true)
  })

  test('/api/message/sync: an agent failure is an AGENT_ERROR; too short a timeout is a 504 and the message carries on', async () => {
    const { w, url } = await world()
    w.llm.queue.push({ status: 500 })
    const failed = await postJson(`${url}/api/message/sync`, { channel: 'telegram', chat_id: 1, content: 'x' })
    expect(failed.status).toBe(502)
    expect((await json(failed)).error).toMatchObject({ code: 'AGENT_ERROR' })
    w.llm.queue.push({ text: 'slow reply', delayMs: 800 })
    const late = await postJson(`${url}/api/message/sync`, { channel: 'telegram', chat_id: 2, content: 'y', timeout_ms: 100 })
    expect(late.status).toBe(504)
    const id = /GET \/api\/message\/(msg_\w+)/.exec((await json(late)).error.message)![1]
    await waitFor(async () => (await json(await fetch(`${url}/api/message/${id}`))).message.state === 'delivered', { what: 'the late delivery' })
  })

  test('/api/send delivers verbatim, without the agent, and returns the channel message id', async () => {
    const { w, url } = await world()
    const response = await postJson(`${url}/api/send`, { channel: 'telegram', chat_id: '555', content: 'Just this, please.' })
    const body = await json(response)
    expect(body.status).toBe('ok')
    const sent = w.telegram.sent.find((m) => m.chat_id === '555')!
    expect(sent.text).toBe('Just this, please.')
    expect(body.message_id).toBe(String(sent.message_id))
    expect(w.llm.calls).toHaveLength(0)
  })

  test('a webhook event → the agent → a signed POST to the receiver', async () => {
    const { w, url } = await world()
    const { raw, headers } = signed({ event: 'message', data: { chat_id: 'room-1', content: 'ping from app', sender: 'alice' } })
    const response = await postJson(`${url}/api/webhook/myapp`, raw, headers)
    expect(response.status).toBe(200)
    const { message_id } = await json(response)
    const delivery = await waitFor(() => w.receiver.received[0], { what: 'the delivery' })
    // Signed over "<timestamp>.<body>" with a current timestamp, and named by its own event id.
    expect(delivery.signatureValid).toBe(true)
    expect(Math.abs(Number(delivery.timestamp) - nowSeconds())).toBeLessThanOrEqual(5)
    expect(delivery.body).toMatchObject({ event: 'message', data: { chat_id: 'room-1', content: 'echo: ping from app', in_reply_to: message_id } })
    expect(delivery.body.data.message_id).toMatch(/^wh_/)
    expect(delivery.eventId).toBe(delivery.body.data.message_id)
  })

  test('the send_message tool lets the agent post to a chat', async () => {
    const { w, url } = await world()
    w.llm.queue.push({ toolCalls: [{ name: 'send_message', input: { channel: 'telegram', chat_id: '999', content: 'Reminder: call mum' } }] }, { text: 'Sent it.' })
    const reply = await json(await postJson(`${url}/api/agent`, { message: 'tell chat 999 to call mum' }))
    expect(reply.reply).toBe('Sent it.')
    expect(w.telegram.sent.find((m) => m.chat_id === '999')?.text).toBe('Reminder: call mum')
  })

  test('long replies are split at Telegram\'s limit', async () => {
    const { w, url } = await world()
    const long = Array.from({ length: 900 }, (_, i) => `word${i}`).join(' ')
    await postJson(`${url}/api/send`, { channel: 'telegram', chat_id: '8', content: long })
    const parts = w.telegram.sent.filter((m) => m.chat_id === '8')
    expect(parts.length).toBe(2)
    expect(parts.every((p) => p.visible.length <= 4096)).toBe(true)
    // Cut after a space, which ends the first part (Telegram does not show it): nothing is lost or added.
    expect(parts[0]!.visible).toEndWith(' ')
    expect(parts.map((p) => p.visible).join('')).toBe(long)
  })
})

describe('safety', () => {
  test('a bad or missing webhook signature → 401 and nothing queued', async () => {
    const { w, url } = await world()
    const event = { event: 'message', data: { chat_id: 'room', content: 'sneaky' } }
    expect((await postJson(`${url}/api/webhook/myapp`, event)).status).toBe(401)
    const wrongSecret = signed(event, { secret: 'wrong-secret-wrong-secret' })
    expect((await postJson(`${url}/api/webhook/myapp`, wrongSecret.raw, wrongSecret.headers)).status).toBe(401)
    const tampered = signed(event)
    expect((await postJson(`${url}/api/webhook/myapp`, tampered.raw.replace('sneaky', 'sneakier'), tampered.headers)).status).toBe(401)
    // A signature without its timestamp header, and a timestamp that was not part of the signature.
    const { 'x-xopcbot-timestamp': _, ...noTimestamp } = signed(event).headers
    expect((await postJson(`${url}/api/webhook/myapp`, JSON.stringify(event), noTimestamp)).status).toBe(401)
    const moved = signed(event)
    expect((await postJson(`${url}/api/webhook/myapp`, moved.raw, { ...moved.headers, 'x-xopcbot-timestamp': String(Number(moved.headers['x-xopcbot-timestamp']) - 7) })).status).toBe(401)
    const good = signed({ event: 'message', data: { chat_id: 'room', content: 'legit' } })
    expect((await postJson(`${url}/api/webhook/myapp`, good.raw, good.headers)).status).toBe(200)
    await waitFor(() => w.receiver.received.length === 1, { what: 'one delivery' })
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['legit'])
  })

  test('dmPolicy "allowlist": senders not in allowFrom are ignored', async () => {
    const { w } = await world({ telegram: { dmPolicy: 'allowlist', allowFrom: ['alice', 1001] } })
    w.telegram.pushMessage(50, 'from a stranger', { id: 50, username: 'mallory' })
    w.telegram.pushMessage(51, 'from alice', { id: 51, username: 'Alice' })
    w.telegram.pushMessage(52, 'from id 1001', { id: 1001 })
    await waitFor(() => w.telegram.sent.length === 2, { what: 'two replies' })
    expect(w.telegram.sent.map((m) => m.text).sort()).toEqual(['echo: from alice', 'echo: from id 1001'])
    expect(w.llm.calls.some((c) => c.lastUser === 'from a stranger')).toBe(false)
  })

  test('unknown or disabled channel → 404 CHANNEL_NOT_FOUND; malformed bodies → 400 naming the field', async () => {
    const { url } = await world()
    for (const path of ['/api/message', '/api/message/sync', '/api/send']) {
      const unknown = await postJson(`${url}${path}`, { channel: 'nope', chat_id: '1', content: 'x' })
      expect(unknown.status).toBe(404)
      expect((await json(unknown)).error.code).toBe('CHANNEL_NOT_FOUND')
      const disabled = await json(await postJson(`${url}${path}`, { channel: 'off', chat_id: '1', content: 'x' }))
      expect(disabled.error.message).toContain('disabled')
    }
    expect((await postJson(`${url}/api/webhook/nope`, {})).status).toBe(404)
    const cases: [unknown, string][] = [
      [{ channel: 'telegram', content: 'x' }, 'chat_id: is required'],
      [{ channel: 'telegram', chat_id: '1', content: '' }, 'content: must be a non-empty string'],
      [{ channel: 'telegram', chat_id: true, content: 'x' }, 'chat_id: must be a string or an integer'],
      [{ chat_id: '1', content: 'x' }, 'channel: is required'],
    ]
    for (const [body, message] of cases) {
      const response = await postJson(`${url}/api/message`, body)
      expect(response.status).toBe(400)
      expect((await json(response)).error.message).toContain(message)
    }
    const badEvent = signed({ event: 'message', data: { chat_id: 'r' } })
    const response = await postJson(`${url}/api/webhook/myapp`, badEvent.raw, badEvent.headers)
    expect(response.status).toBe(400)
    expect((await json(response)).error.message).toContain('data.content: is required')
    expect((await json(await fetch(`${url}/api/message/msg_nope`))).error.code).toBe('MESSAGE_NOT_FOUND')
  })

  test('Telegram webhook mode: setWebhook on start; a wrong secret → 401; the right one is processed', async () => {
    const { w, url } = await world({ telegram: { mode: 'webhook', publicUrl: 'https://bot.example.com', webhookSecret: 'tg-secret_123' } })
    await waitFor(() => w.telegram.webhook, { what: 'setWebhook' })
    expect(w.telegram.webhook).toEqual({ url: 'https://bot.example.com/api/webhook/telegram', secret_token: 'tg-secret_123' })
    const update = { update_id: 5, message: { message_id: 1, date: 0, chat: { id: 9, type: 'private' }, from: { id: 9, is_bot: false, first_name: 'T' }, text: 'via webhook' } }
    expect((await postJson(`${url}/api/webhook/telegram`, update, { 'x-telegram-bot-api-secret-token': 'wrong' })).status).toBe(401)
    expect((await postJson(`${url}/api/webhook/telegram`, update)).status).toBe(401)
    expect((await postJson(`${url}/api/webhook/telegram`, update, { 'x-telegram-bot-api-secret-token': 'tg-secret_123' })).status).toBe(200)
    await waitFor(() => w.telegram.sent.find((m) => m.text === 'echo: via webhook'), { what: 'the reply' })
    expect(w.llm.calls).toHaveLength(1)
  })
})

describe('faults', () => {
  test("Telegram 429 retry_after is honoured", async () => {
    const { w, url } = await world()
    w.telegram.failures.set('sendMessage', [{ error_code: 429, description: 'Too Many Requests: retry after 1', retry_after: 1 }])
    const response = await postJson(`${url}/api/send`, { channel: 'telegram', chat_id: '3', content: 'patience' })
    expect(response.status).toBe(200)
    const attempts = w.telegram.calls.filter((c) => c.method === 'sendMessage')
    expect(attempts).toHaveLength(2)
    expect(w.telegram.sent).toHaveLength(1)
    // The wait asked for (1 s), not the channel's own first backoff (500 ms).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(900)
  })

  test('a receiver that is down gets retries, then the message is failed with the reason', async () => {
    const { w, url } = await world({ webhookRetry: { attempts: 3, baseDelayMs: 50 } })
    w.receiver.statuses.push(500, 503, 500)
    const { raw, headers } = signed({ event: 'message', data: { chat_id: 'r', content: 'hello?' } })
    const { message_id } = await json(await postJson(`${url}/api/webhook/myapp`, raw, headers))
    const message = await waitFor(async () => {
      const m = (await json(await fetch(`${url}/api/message/${message_id}`))).message
      return m.state === 'failed' ? m : null
    }, { what: 'failed state' })
    expect(w.receiver.received).toHaveLength(3)
    expect(message.error).toContain('delivery failed')
    expect(message.error).toContain('HTTP 500')
    expect(message.reply).toBe('echo: hello?')
  })

  test('one slow chat does not block another', async () => {
    const { w, url } = await world()
    w.llm.fallback = (call) => (call.lastUser === 'slow one' ? { text: 'finally', delayMs: 2500 } : { text: `echo: ${call.lastUser}` })
    await postJson(`${url}/api/message`, { channel: 'telegram', chat_id: 'A', content: 'slow one' })
    await waitFor(() => w.llm.calls.length === 1, { what: 'the slow turn to start' })
    await postJson(`${url}/api/message`, { channel: 'telegram', chat_id: 'B', content: 'quick one' })
    await waitFor(() => w.telegram.sent.find((m) => m.chat_id === 'B'), { what: 'chat B' })
    expect(w.telegram.sent.find((m) => m.chat_id === 'A')).toBeUndefined()
    await waitFor(() => w.telegram.sent.find((m) => m.chat_id === 'A'), { what: 'chat A' })
  })
})

describe('webhook replay protection', () => {
  const event = (content: string) => ({ event: 'message', data: { chat_id: 'replay-room', content } })
  const post = (url: string, request: { raw: string; headers: Record<string, string> }, channel = 'myapp') => postJson(`${url}/api/webhook/${channel}`, request.raw, request.headers)

  test('the same signed request POSTed three times gives one turn; the repeats are 200 duplicate:true, also after a restart', async () => {
    const { w, gateway, url } = await world()
    const request = signed(event('only once'), { eventId: 'evt-0001' })
    const first = await json(await post(url, request))
    expect(first).toEqual({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    for (let i = 0; i < 2; i++) {
      const repeat = await post(url, request)
      expect(repeat.status).toBe(200)
      expect(await json(repeat)).toEqual({ status: 'ok', duplicate: true })
    }
    // The sender retrying under the same event id (a new timestamp, so a new signature) is the same event.
    const retried = signed(event('only once'), { eventId: 'evt-0001', timestamp: nowSeconds() - 30 })
    expect(await json(await post(url, retried))).toEqual({ status: 'ok', duplicate: true })
    // A captured request replayed under a new event id is still the same signed request.
    expect(await json(await post(url, { raw: request.raw, headers: { ...request.headers, 'x-xopcbot-event-id': 'evt-forged' } }))).toEqual({ status: 'ok', duplicate: true })
    await waitFor(() => w.receiver.received.length === 1, { what: 'the one delivery' })

    // The ids live in the database: a restarted gateway still knows them.
    await gateway.stop()
    worlds.trackGateway(await w.start())
    expect(await json(await post(url, request))).toEqual({ status: 'ok', duplicate: true })
    // …and still takes new events (which proves it is up and answering) — then everything is counted.
    const next = signed(event('a new one'), { eventId: 'evt-0002' })
    expect((await json(await post(url, next))).message_id).toMatch(/^msg_/)
    await waitFor(() => w.receiver.received.length === 2, { what: 'the second delivery' })
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['only once', 'a new one'])
    expect(w.receiver.received.map((d) => d.body.data.content)).toEqual(['echo: only once', 'echo: a new one'])
  })

  test('without an event id the signature identifies the request', async () => {
    const { w, url } = await world()
    const request = signed(event('no id'))
    expect((await json(await post(url, request))).message_id).toMatch(/^msg_/)
    expect(await json(await post(url, request))).toEqual({ status: 'ok', duplicate: true })
    // The same content signed at another second is another request.
    const later = signed(event('no id'), { timestamp: nowSeconds() - 60 })
    expect((await json(await post(url, later))).message_id).toMatch(/^msg_/)
    await waitFor(() => w.receiver.received.length === 2, { what: 'two deliveries' })
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['no id', 'no id'])
  })

  test('a timestamp more than 300 s away, or the old unsigned-timestamp scheme, is 401 with a message that says what to send', async () => {
    const { w, url } = await world()
    const cases: Record<string, { raw: string; headers: Record<string, string> }> = {
      stale: signed(event('stale'), { timestamp: nowSeconds() - 301 }),
      future: signed(event('future'), { timestamp: nowSeconds() + 301 }),
      oldScheme: (() => {
        // The previous contract: HMAC of the raw body alone.
        const raw = JSON.stringify(event('old scheme'))
        return { raw, headers: { 'x-xopcbot-timestamp': String(nowSeconds()), 'x-xopcbot-signature': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(raw).digest('hex')}` } }
      })(),
      oldSchemeNoTimestamp: (() => {
        const raw = JSON.stringify(event('old scheme, no timestamp'))
        return { raw, headers: { 'x-xopcbot-signature': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(raw).digest('hex')}` } }
      })(),
    }
    for (const [name, request] of Object.entries(cases)) {
      const response = await post(url, request)
      expect({ name, status: response.status }).toEqual({ name, status: 401 })
      const { error } = await json(response)
      expect(error.code).toBe('UNAUTHORIZED')
      expect(error.message).toContain('X-Xopcbot-Timestamp')
      // It says what to send, never what the signature should have been.
      const timestamp = request.headers['x-xopcbot-timestamp'] ?? String(nowSeconds())
      for (const ts of [Number(timestamp), Number(timestamp) - 1, Number(timestamp) + 1]) expect(error.message).not.toContain(sign(WEBHOOK_SECRET, ts, request.raw).slice(7, 23))
    }
    const { error: stale } = await json(await post(url, signed(event('stale'), { timestamp: nowSeconds() - 301 })))
    expect(stale.message).toMatch(/30[1-9] s old; it must be within 300 s/)
    const { error: wrong } = await json(await post(url, cases.oldScheme!))
    expect(wrong.message).toContain('sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the channel secret>')
    // Inside the window is fine, either way.
    expect((await post(url, signed(event('a bit old'), { timestamp: nowSeconds() - 290 }))).status).toBe(200)
    expect((await post(url, signed(event('a bit ahead'), { timestamp: nowSeconds() + 290 }))).status).toBe(200)
    await waitFor(() => w.llm.calls.length === 2, { what: 'the two accepted turns' })
    expect(w.llm.calls.map((c) => c.lastUser).sort()).toEqual(['a bit ahead', 'a bit old'])
  })

  test('an event id that is not 1-200 printable characters is a 400 that says so', async () => {
    const { url } = await world()
    for (const eventId of ['x'.repeat(201), 'tab\there', '']) {
      const response = await post(url, signed(event('bad id'), { eventId }))
      expect(response.status).toBe(400)
      expect((await json(response)).error).toEqual({ code: 'INVALID_REQUEST', message: 'X-Xopcbot-Event-Id must be 1-200 printable ASCII characters' })
    }
    expect((await post(url, signed(event('good id'), { eventId: 'x'.repeat(200) }))).status).toBe(200)
  })

  test('POST /api/webhook to an unknown, disabled or polling channel: one 404 that names no channel', async () => {
    const { url } = await world()
    const bodies = new Set<string>()
    for (const channel of ['nope', 'off', 'telegram']) {
      const response = await post(url, signed(event('hello?')), channel)
      expect(response.status).toBe(404)
      const text = await response.text()
      expect(JSON.parse(text).error.code).toBe('CHANNEL_NOT_FOUND')
      for (const name of ['nope', 'off', 'myapp', 'telegram', 'disabled']) expect(text).not.toContain(name)
      bodies.add(text)
    }
    expect(bodies.size).toBe(1)
    // The authenticated routes still help their owner.
    expect((await json(await postJson(`${url}/api/message`, { channel: 'nope', chat_id: '1', content: 'x' }))).error.message).toMatch(/enabled channels: .*myapp/)
  })
})

describe('webhook deliveries', () => {
  test('a receiver answering with a redirect: the delivery fails at once, and the redirect target gets nothing', async () => {
    const { w, url } = await world()
    const elsewhere = startWebhookReceiver(WEBHOOK_SECRET)
    try {
      w.receiver.redirectTo = elsewhere.url
      const { message_id } = await json(await postJson(`${url}/api/message`, { channel: 'myapp', chat_id: 'r', content: 'go somewhere else' }))
      const message = await waitFor(async () => {
        const m = (await json(await fetch(`${url}/api/message/${message_id}`))).message
        return m.state === 'failed' ? m : null
      }, { what: 'failed state' })
      // Only the origin is named: a receiver's path or query may hold a token of its own.
      expect(message.error).toBe(`delivery failed: ${new URL(w.receiver.url).origin} answered HTTP 307 (redirects are not followed)`)
      // A permanent failure: one attempt, not retried, and nothing sent to where the redirect pointed.
      expect(w.receiver.received).toHaveLength(1)
      expect(w.receiver.received[0]!.signatureValid).toBe(true)
      expect(elsewhere.received).toHaveLength(0)
      const sent = await postJson(`${url}/api/send`, { channel: 'myapp', chat_id: 'r', content: 'verbatim' })
      expect(sent.status).toBe(502)
      expect((await json(sent)).error.message).toContain('answered HTTP 307 (redirects are not followed)')
      expect(elsewhere.received).toHaveLength(0)
    } finally {
      elsewhere.stop()
    }
  })

  test("the gateway's retries carry the same event id, each with a fresh valid signature", async () => {
    const { w, url } = await world({ webhookRetry: { attempts: 3, baseDelayMs: 50 } })
    w.receiver.statuses.push(503)
    const response = await postJson(`${url}/api/send`, { channel: 'myapp', chat_id: 'r', content: 'twice' })
    expect(response.status).toBe(200)
    const { message_id } = await json(response)
    expect(w.receiver.received.map((d) => [d.eventId, d.signatureValid])).toEqual([
      [message_id, true],
      [message_id, true],
    ])
  })
})
