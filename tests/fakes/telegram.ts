/**
 * A fake Telegram Bot API server: a real HTTP server on 127.0.0.1 answering /bot<token>/<method> the way
 * api.telegram.org does ({ok, result} or {ok: false, error_code, description, parameters}). getMe names the bot;
 * getUpdates long-polls with offsets; sendMessage records what was sent; failures (429 with retry_after, 5xx,
 * network) are scriptable. Messages can come from private chats or groups, with @mention entities (found in the
 * text as Telegram does) and replies to earlier messages, the bot's included.
 *
 * Outages: `stop()` takes the server away (open connections are cut) and `start()` brings it back on the same
 * port with everything it held — pending updates, sent messages, calls — as Telegram's servers would after a
 * network outage. `startFakeTelegram({ listening: false })` reserves a port and starts nothing, for a gateway
 * that comes up before its Bot API.
 */
export interface SentMessage {
  chat_id: string
  text: string
  message_id: number
  at: number
}

export interface PushOptions {
  chatType?: 'private' | 'group' | 'supergroup'
  /** the message_id this message replies to (one the bot sent, or an earlier pushed one) */
  replyTo?: number
  /** explicit entities; by default every @username in the text is a "mention" entity */
  entities?: { type: string; offset: number; length: number; user?: unknown }[]
}

export interface FakeTelegram {
  /** http://127.0.0.1:<port>: the same across stop() and start() */
  url: string
  port: number
  token: string
  /** what getMe answers */
  bot: { id: number; username: string }
  sent: SentMessage[]
  /** every call, failed ones too; `at` is when it arrived (performance.now()) */
  calls: { method: string; body: any; at: number }[]
  webhook: { url: string; secret_token?: string } | null
  /** queues an update from a user (the update id is assigned) */
  pushMessage: (chatId: number, text: string, from?: { id: number; username?: string }, options?: PushOptions) => number
  /** the message_id of a pushed update's message (to reply to it) */
  messageIdOf: (updateId: number) => number
  /** the next calls of `method` fail like this, in order */
  failures: Map<string, ({ error_code: number; description: string; retry_after?: number } | 'drop')[]>
  /** the offsets getUpdates was called with */
  offsets: (number | undefined)[]
  /** whether the server is up */
  listening: () => boolean
  /** (re)starts the server on its port; does nothing when it is up */
  start: () => void
  /** takes the server away, cutting open connections; the state is kept for start() */
  stop: () => void
}

/** Mention entities of a text, as Telegram adds them (offsets in UTF-16 code units, like JavaScript strings). */
function mentionEntities(text: string) {
  return [...text.matchAll(/@[A-Za-z0-9_]{5,32}\b/g)].map((m) => ({ type: 'mention', offset: m.index, length: m[0].length }))
}

export function startFakeTelegram({
  token = '123456:TEST-token-abcdefghijklmnop',
  bot = { id: 123456, username: 'fake_bot' },
  port = 0,
  listening = true,
}: { token?: string; bot?: { id: number; username: string }; port?: number; listening?: boolean } = {}): FakeTelegram {
  const updates: any[] = []
  let nextUpdateId = 1000
  let nextMessageId = 1
  const waiting = new Set<() => void>()
  /** every message by id, so that replies can quote it */
  const messages = new Map<number, any>()
  const chatTypes = new Map<string, string>()
  const pushedIds = new Map<number, number>()
  const fake: Omit<FakeTelegram, 'url' | 'port' | 'listening' | 'start' | 'stop'> = {
    token,
    bot,
    sent: [],
    calls: [],
    webhook: null,
    failures: new Map(),
    offsets: [],
    messageIdOf(updateId) {
      const messageId = pushedIds.get(updateId)
      if (messageId === undefined) throw new Error(`the fake pushed no update ${updateId}`)
      return messageId
    },
    pushMessage(chatId, text, from = { id: chatId, username: `user${chatId}` }, { chatType = 'private', replyTo, entities = mentionEntities(text) } = {}) {
      const update_id = nextUpdateId++
      const chat = chatType === 'private' ? { id: chatId, type: chatType, first_name: 'Test' } : { id: chatId, type: chatType, title: `Group ${chatId}` }
      chatTypes.set(String(chatId), chatType)
      const message: any = { message_id: nextMessageId++, date: Math.floor(Date.now() / 1000), chat, from: { is_bot: false, first_name: 'Test', ...from }, text }
      if (entities.length) message.entities = entities
      if (replyTo !== undefined) {
        const original = messages.get(replyTo)
        if (!original) throw new Error(`the fake knows no message ${replyTo} to reply to`)
        message.reply_to_message = original
      }
      messages.set(message.message_id, message)
      pushedIds.set(update_id, message.message_id)
      updates.push({ update_id, message })
      for (const wake of [...waiting]) wake()
      return update_id
    },
  }
  const ok = (result: unknown) => Response.json({ ok: true, result })

  const handle = async (request: Request): Promise<Response> => {
    const match = /^\/bot([^/]+)\/(\w+)$/.exec(new URL(request.url).pathname)
    if (!match) return Response.json({ ok: false, error_code: 404, description: 'Not Found' }, { status: 404 })
    const [, givenToken, method] = match
    if (givenToken !== token) return Response.json({ ok: false, error_code: 401, description: 'Unauthorized' }, { status: 401 })
    const text = await request.text()
    const body = text ? JSON.parse(text) : {}
    fake.calls.push({ method: method!, body, at: performance.now() })
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
        return ok({ id: bot.id, is_bot: true, first_name: 'Fake', username: bot.username, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false })
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
        const message = {
          message_id,
          date: Math.floor(Date.now() / 1000),
          chat: { id: Number(body.chat_id), type: chatTypes.get(String(body.chat_id)) ?? 'private' },
          from: { id: bot.id, is_bot: true, first_name: 'Fake', username: bot.username },
          text: body.text,
        }
        messages.set(message_id, message)
        return ok(message)
      }
      default:
        return Response.json({ ok: false, error_code: 404, description: `Not Found: method ${method}` }, { status: 404 })
    }
  }

  const serve = (onPort: number) => Bun.serve({ hostname: '127.0.0.1', port: onPort, idleTimeout: 255, fetch: handle })
  let server: ReturnType<typeof serve> | null = serve(port)
  const boundPort = server.port!
  if (!listening) {
    // The port is taken from the system now (so that the gateway's config can name it) and left free until start().
    server.stop(true)
    server = null
  }
  return Object.assign(fake, {
    url: `http://127.0.0.1:${boundPort}`,
    port: boundPort,
    listening: () => server !== null,
    start: () => {
      server ??= serve(boundPort)
    },
    stop: () => {
      server?.stop(true)
      server = null
    },
  })
}
