import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sign } from '../src/channels/webhook'
import { makeWorld, WEBHOOK_SECRET, type World } from './helpers/channels'
import type { RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

// Session keys of channel conversations are `<channel>:<chat_id>` with the chat id exactly as the channel gave
// it; a webhook chat id is any string of up to 256 characters. Every such session must be listed, read and
// deleted through the API, with the key encoded by encodeURIComponent in the path. The tests share one
// gateway and run in order: the sessions the first one creates are deleted by the last.
let world: World
let gateway: RunningGateway
beforeAll(async () => {
  world = await makeWorld()
  gateway = await world.start()
}, 30_000)
afterAll(async () => {
  if (gateway?.proc.exitCode === null) await gateway.stop()
  world?.stop()
})

const api = (path: string, init?: RequestInit) => fetch(`${gateway.url}${path}`, init)
const sessionPath = (key: string) => `/api/sessions/${encodeURIComponent(key)}`

/** A webhook event as a sender signs it: X-Xopcbot-Timestamp + X-Xopcbot-Signature over "<timestamp>.<raw body>". */
function postEvent(chatId: string, content: string) {
  const raw = JSON.stringify({ event: 'message', data: { chat_id: chatId, content } })
  const timestamp = Math.floor(Date.now() / 1000)
  return postJson(`${gateway.url}/api/webhook/myapp`, raw, { 'x-xopcbot-timestamp': String(timestamp), 'x-xopcbot-signature': sign(WEBHOOK_SECRET, timestamp, raw) })
}

const CHAT_IDS = [
  'a b',
  'a/b',
  'ünïcødé-🙂',
  'x%2Fy',
  'q?x#y',
  'a+b',
  '../..',
  // 256 characters, the most a webhook chat id may have, with "/" all along it.
  'é/'.repeat(128),
]

describe('session keys of webhook chats round-trip through the API', () => {
  test('every chat id gives a session that is listed, and read with its messages by its encoded key', async () => {
    expect(CHAT_IDS.at(-1)!.length).toBe(256)
    for (const [index, chatId] of CHAT_IDS.entries()) {
      const response = await postEvent(chatId, `hello ${index}`)
      expect({ chatId, status: response.status }).toEqual({ chatId, status: 200 })
    }
    // The agent has replied to every chat (and the reply was delivered) before the sessions are looked at.
    await waitFor(() => CHAT_IDS.every((chatId) => world.receiver.received.some((d) => d.body.data.chat_id === chatId)), { what: 'a reply in every chat' })
    for (const [index, chatId] of CHAT_IDS.entries()) {
      expect(world.receiver.received.find((d) => d.body.data.chat_id === chatId)!.body.data.content).toBe(`echo: hello ${index}`)
    }

    const listed = await json(await api('/api/sessions?channel=myapp&limit=500'))
    expect(listed.total).toBe(CHAT_IDS.length)
    expect(listed.sessions.map((s: any) => [s.key, s.channel, s.chat_id]).sort()).toEqual(CHAT_IDS.map((chatId) => [`myapp:${chatId}`, 'myapp', chatId]).sort())

    for (const [index, chatId] of CHAT_IDS.entries()) {
      const key = `myapp:${chatId}`
      const read = await api(sessionPath(key))
      expect({ key, status: read.status }).toEqual({ key, status: 200 })
      const { session } = await json(read)
      expect(session).toMatchObject({ key, channel: 'myapp', chat_id: chatId, message_count: 2 })
      expect(session.messages.map((m: any) => [m.role, m.content])).toEqual([
        ['user', `hello ${index}`],
        ['assistant', `echo: hello ${index}`],
      ])
    }
  }, 30_000)

  test('the path is decoded exactly once: "%252F" is "%2F", "%2F" is "/", and "+" is a plus', async () => {
    // "myapp:x%2Fy" and "myapp:x/y" are different keys; only the first one exists.
    expect((await json(await api('/api/sessions/myapp%3Ax%252Fy'))).session.chat_id).toBe('x%2Fy')
    const slash = await api('/api/sessions/myapp%3Ax%2Fy')
    expect(slash.status).toBe(404)
    expect((await json(slash)).error).toEqual({ code: 'SESSION_NOT_FOUND', message: 'no session "myapp:x/y"' })
    expect((await json(await api('/api/sessions/myapp:a%2Fb'))).session.chat_id).toBe('a/b')
    // A literal "+" in a path is a plus, not a space.
    expect((await json(await api('/api/sessions/myapp:a+b'))).session.chat_id).toBe('a+b')
    expect((await json(await api('/api/sessions/myapp:a%20b'))).session.chat_id).toBe('a b')
  })

  test('DELETE removes each session; afterwards GET and DELETE are 404 SESSION_NOT_FOUND', async () => {
    for (const chatId of CHAT_IDS) {
      const key = `myapp:${chatId}`
      const deleted = await api(sessionPath(key), { method: 'DELETE' })
      expect({ key, status: deleted.status, body: await json(deleted) }).toEqual({ key, status: 200, body: { status: 'ok' } })
      const gone = await api(sessionPath(key))
      expect({ key, status: gone.status, code: (await json(gone)).error.code }).toEqual({ key, status: 404, code: 'SESSION_NOT_FOUND' })
      expect((await api(sessionPath(key), { method: 'DELETE' })).status).toBe(404)
    }
    expect((await json(await api('/api/sessions?channel=myapp'))).total).toBe(0)
  })
})
