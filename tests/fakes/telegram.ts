/**
 * A fake Telegram Bot API server: a real HTTP server on 127.0.0.1 answering /bot<token>/<method> the way
 * api.telegram.org does ({ok, result} or {ok: false, error_code, description, parameters}). getUpdates long-polls
 * with offsets; sendMessage records what was sent; failures (429 with retry_after, 5xx, network) are scriptable.
 */
export interface SentMessage {
  chat_id: string
  text: string
  message_id: number
  at: number
}

export interface FakeTelegram {
  url: string
  token: string
  sent: SentMessage[]
  calls: { method: string; body: any }[]
  webhook: { url: string; secret_token?: string } | null
  /** queues an update from a user (the update id is assigned) */
  pushMessage: (chatId: number, text: string, from?: { id: number; username?: string }) => number
  /** the next calls of `method` fail like this, in order */
  failures: Map<string, ({ error_code: number; description: string; retry_after?: number } | 'drop')[]>
  /** the offsets getUpdates was called with */
  offsets: (number | undefined)[]
  stop: () => void
}

export function startFakeTelegram({ token = '123456:TEST-token-abcdefghijklmnop' } = {}): FakeTelegram {
  const updates: any[] = []
  let nextUpdateId = 1000
  let nextMessageId = 1
  const waiting = new Set<() => void>()
  const fake: Omit<FakeTelegram, 'url' | 'stop'> = {
    token,
    sent: [],
    calls: [],
    webhook: null,
    failures: new Map(),
    offsets: [],
    pushMessage(chatId, text, from = { id: chatId, username: `user${chatId}` }) {
      const update_id = nextUpdateId++
      updates.push({ update_id, message: { message_id: nextMessageId++, date: Math.floor(Date.now() / 1000), chat: { id: chatId, type: 'private' }, from: { is_bot: false, first_name: 'Test', ...from }, text } })
      for (const wake of [...waiting]) wake()
      return update_id
    },
  }
  const ok = (result: unknown) => Response.json({ ok: true, result })

  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 255,
    async fetch(request) {
      const match = /^\/bot([^/]+)\/(\w+)$/.exec(new URL(request.url).pathname)
      if (!match) return Response.json({ ok: false, error_code: 404, description: 'Not Found' }, { status: 404 })
      const [, givenToken, method] = match
      if (givenToken !== token) return Response.json({ ok: false, error_code: 401, description: 'Unauthorized' }, { status: 401 })
      const text = await request.text()
      const body = text ? JSON.parse(text) : {}
      fake.calls.push({ method: method!, body })
      const failure = fake.failures.get(method!)?.shift()
      if (failure === 'drop') return new Response(null, { status: 502 })
      if (failure) {
        return Response.json(
          { ok: false, error_code: failure.error_code, description: failure.description, ...(failure.retry_after ? { parameters: { retry_after: failure.retry_after } } : {}) },
          { status: failure.error_code },
        )
      }
      switch (method) {
        case 'getMe':
          return ok({ id: 123456, is_bot: true, first_name: 'Fake', username: 'fake_bot' })
        case 'setWebhook':
          fake.webhook = { url: body.url, secret_token: body.secret_token }
          return ok(true)
        case 'deleteWebhook':
          fake.webhook = null
          return ok(true)
        case 'getUpdates': {
          const offset: number | undefined = body.offset
          fake.offsets.push(offset)
          if (offset !== undefined) while (updates.length && updates[0].update_id < offset) updates.shift()
          const deadline = Date.now() + Math.min(Number(body.timeout ?? 0), 30) * 1000
          while (updates.length === 0 && Date.now() < deadline && !request.signal.aborted) {
            await new Promise<void>((resolve) => {
              const wake = () => {
                waiting.delete(wake)
                resolve()
              }
              waiting.add(wake)
              setTimeout(wake, Math.max(0, deadline - Date.now()))
            })
          }
          return ok(updates.slice(0, Number(body.limit ?? 100)))
        }
        case 'sendMessage': {
          const message_id = nextMessageId++
          fake.sent.push({ chat_id: String(body.chat_id), text: body.text, message_id, at: performance.now() })
          return ok({ message_id, date: Math.floor(Date.now() / 1000), chat: { id: Number(body.chat_id), type: 'private' }, text: body.text })
        }
        default:
          return Response.json({ ok: false, error_code: 404, description: `Not Found: method ${method}` }, { status: 404 })
      }
    },
  })
  return Object.assign(fake, { url: `http://127.0.0.1:${server.port}`, stop: () => void server.stop(true) })
}
