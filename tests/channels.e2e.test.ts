import { afterEach, describe, expect, test } from 'bun:test'
import { sign } from '../src/channels/webhook'
import { makeWorld, postJson, WEBHOOK_SECRET, type World } from './helpers/channels'
import type { RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

const worlds: World[] = []
const gateways: RunningGateway[] = []
async function world(options: Parameters<typeof makeWorld>[0] = {}) {
  const w = await makeWorld(options)
  worlds.push(w)
  const gateway = await w.start()
  gateways.push(gateway)
  return { w, gateway, url: gateway.url }
}
afterEach(async () => {
  for (const g of gateways.splice(0)) if (g.proc.exitCode === null) await g.stop()
  for (const w of worlds.splice(0)) w.stop()
})

const json = async (response: Response) => (await response.json()) as any
const signed = (body: unknown) => {
  const raw = JSON.stringify(body)
  return { raw, headers: { 'x-xopcbot-signature': sign(WEBHOOK_SECRET, raw) } }
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
    expect(delivery.signatureValid).toBe(true)
    expect(delivery.body).toMatchObject({ event: 'message', data: { chat_id: 'room-1', content: 'echo: ping from app', in_reply_to: message_id } })
    expect(delivery.body.data.message_id).toMatch(/^wh_/)
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
    expect(parts.every((p) => p.text.length <= 4096)).toBe(true)
    expect(parts.map((p) => p.text).join(' ')).toBe(long)
  })
})

describe('safety', () => {
  test('a bad or missing webhook signature → 401 and nothing queued', async () => {
    const { w, url } = await world()
    const event = { event: 'message', data: { chat_id: 'room', content: 'sneaky' } }
    expect((await postJson(`${url}/api/webhook/myapp`, event)).status).toBe(401)
    expect((await postJson(`${url}/api/webhook/myapp`, event, { 'x-xopcbot-signature': sign('wrong-secret-wrong-secret', JSON.stringify(event)) })).status).toBe(401)
    const tampered = signed(event)
    expect((await postJson(`${url}/api/webhook/myapp`, tampered.raw.replace('sneaky', 'sneakier'), tampered.headers)).status).toBe(401)
    const good = signed({ event: 'message', data: { chat_id: 'room', content: 'legit' } })
    expect((await postJson(`${url}/api/webhook/myapp`, good.raw, good.headers)).status).toBe(200)
    await waitFor(() => w.receiver.received.length === 1, { what: 'one delivery' })
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['legit'])
  })

  test('senders not in allowFrom are ignored', async () => {
    const { w } = await world({ telegram: { allowFrom: ['alice', 1001] } })
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
