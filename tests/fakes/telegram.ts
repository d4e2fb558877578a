/**
 * A fake Telegram Bot API server: a real HTTP server on 127.0.0.1 answering /bot<token>/<method> the way
 * api.telegram.org does ({ok, result} or {ok: false, error_code, description, parameters}). getMe names the bot;
 * getUpdates long-polls with offsets; sendMessage records what was sent; failures (429 with retry_after, 5xx,
 * network) are scriptable. With `parse_mode: "HTML"` the text is parsed as Telegram does (`parseTelegramHtml`,
 * stricter than Telegram where it can be): what it cannot parse is refused with 400 "Bad Request: can't parse
 * entities: …", a text longer than 4,096 characters after parsing with "message is too long". sendChatAction is
 * recorded in `chatActions`. Messages can come from private chats or groups, with @mention entities (found in the
 * text as Telegram does) and replies to earlier messages, the bot's included.
 *
 * Outages: `stop()` takes the server away (open connections are cut) and `start()` brings it back on the same
 * port with everything it held — pending updates, sent messages, calls — as Telegram's servers would after a
 * network outage. `startFakeTelegram({ listening: false })` reserves a port and starts nothing, for a gateway
 * that comes up before its Bot API.
 */
export interface SentMessage {
  chat_id: string
  /** the text as it was sent (HTML, with parse_mode "HTML") */
  text: string
  message_id: number
  at: number
  parse_mode?: string
  /** the text Telegram shows: with parse_mode "HTML", tags removed and entities decoded */
  visible: string
  /** the formatting Telegram found in it */
  entities: TelegramEntity[]
}

/** A message entity as Telegram reports it: offset and length in UTF-16 code units of the visible text. */
export interface TelegramEntity {
  type: string
  offset: number
  length: number
  url?: string
  language?: string
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
  /** every sendChatAction; `at` as in `calls` */
  chatActions: { chat_id: string; action: string; at: number }[]
  /** tags this server does not know (as an older Bot API server would not know "blockquote"): refused like unknown ones */
  unsupportedTags: Set<string>
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

const TAG_ENTITY: Record<string, string> = {
  b: 'bold', strong: 'bold', i: 'italic', em: 'italic', u: 'underline', ins: 'underline', s: 'strikethrough', strike: 'strikethrough',
  del: 'strikethrough', 'tg-spoiler': 'spoiler', span: 'spoiler', a: 'text_link', code: 'code', pre: 'pre', blockquote: 'blockquote', 'tg-emoji': 'custom_emoji',
}
/** the attributes each tag may have */
const TAG_ATTRIBUTES: Record<string, string[]> = { a: ['href'], code: ['class'], span: ['class'], blockquote: ['expandable'], 'tg-emoji': ['emoji-id'] }
const FORMATTING = new Set(['bold', 'italic', 'underline', 'strikethrough', 'spoiler'])
const ENTITY_NAMES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' }

/**
 * Parses Telegram HTML the way the Bot API does (https://core.telegram.org/bots/api#html-style): the visible text
 * and its entities, or why Telegram refuses it. Refused like Telegram: an unknown tag or attribute, an end tag that
 * does not match, a tag left open, an unknown entity. Refused although Telegram might not (this is a checker, not
 * a copy): a bare `<`, `>` or `&`; a link to anything but http(s) and tg:; entities nested where Telegram's rules
 * forbid it (anything in code or pre but pre > code, pre or blockquote inside another entity, a link or code in a
 * link). Offsets in errors are byte offsets, as Telegram gives them.
 */
export function parseTelegramHtml(html: string, { unsupportedTags = new Set<string>() }: { unsupportedTags?: Set<string> } = {}):
  | { ok: true; text: string; entities: TelegramEntity[] }
  | { ok: false; error: string } {
  let text = ''
  const entities: TelegramEntity[] = []
  const open: { name: string; entity: TelegramEntity; hasChild: boolean }[] = []
  const at = (index: number) => `at byte offset ${Buffer.byteLength(html.slice(0, index))}`
  for (let i = 0; i < html.length; ) {
    const c = html[i]!
    if (c === '&') {
      const match = /^&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);/.exec(html.slice(i, i + 12))
      const decoded = match ? (match[1]![0] === '#' ? fromCodePoint(match[1]!) : ENTITY_NAMES[match[1]!]) : undefined
      if (decoded === undefined) return { ok: false, error: `Unsupported HTML entity ${at(i)}` }
      text += decoded
      i += match![0].length
      continue
    }
    if (c === '>') return { ok: false, error: `Unescaped ">" ${at(i)}` }
    if (c !== '<') {
      text += c
      i++
      continue
    }
    const end = html.indexOf('>', i)
    if (end < 0) return { ok: false, error: `Unclosed start tag ${at(i)}` }
    const tag = html.slice(i + 1, end)
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim().toLowerCase()
      const top = open.pop()
      if (!top) return { ok: false, error: `Unexpected end tag ${at(i)}` }
      if (top.name !== name) return { ok: false, error: `Unmatched end tag ${at(i)}, expected "</${top.name}>", found "</${name}>"` }
      top.entity.length = text.length - top.entity.offset
      if (top.entity.length > 0) entities.push(top.entity)
      i = end + 1
      continue
    }
    const parsed = /^([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:="[^"<]*")?)*)\s*$/.exec(tag)
    const name = parsed?.[1]!.toLowerCase() ?? ''
    const type = TAG_ENTITY[name]
    if (!parsed || !type || unsupportedTags.has(name)) return { ok: false, error: `Unsupported start tag "${name || tag}" ${at(i)}` }
    const entity: TelegramEntity = { type, offset: text.length, length: 0 }
    for (const [, attribute, rawValue] of parsed[2]!.matchAll(/([a-zA-Z-]+)(?:="([^"]*)")?/g)) {
      const value = rawValue === undefined ? '' : decode(rawValue)
      if (value === undefined || !(TAG_ATTRIBUTES[name] ?? []).includes(attribute!.toLowerCase())) return { ok: false, error: `Unsupported attribute "${attribute}" of tag "${name}" ${at(i)}` }
      if (name === 'a') {
        if (!/^(https?:\/\/[^\s/]+|tg:)/i.test(value)) return { ok: false, error: `Wrong URL "${value}" of a link ${at(i)}` }
        entity.url = value
      }
      if (name === 'code') {
        if (!value.startsWith('language-')) return { ok: false, error: `Unsupported class "${value}" of tag "code" ${at(i)}` }
        entity.language = value.slice('language-'.length)
      }
      if (name === 'span' && value !== 'tg-spoiler') return { ok: false, error: `Unsupported start tag "span" ${at(i)}` }
      if (name === 'blockquote') entity.type = 'expandable_blockquote'
    }
    if (name === 'a' && entity.url === undefined) return { ok: false, error: `A link without href ${at(i)}` }
    // Telegram's nesting rules (https://core.telegram.org/bots/api#formatting-options).
    const parent = open[open.length - 1]
    const insidePre = parent?.name === 'pre'
    if (parent && (parent.name === 'code' || (insidePre && (name !== 'code' || parent.hasChild || text.length > parent.entity.offset)))) {
      return { ok: false, error: `Tag "${name}" inside "${parent.name}" ${at(i)}` }
    }
    if (entity.language !== undefined && !insidePre) return { ok: false, error: `A code language outside of "pre" ${at(i)}` }
    if ((type === 'pre' || type === 'blockquote' || entity.type === 'expandable_blockquote') && open.length) return { ok: false, error: `Tag "${name}" inside "${open[0]!.name}" ${at(i)}` }
    if (!FORMATTING.has(type) && open.some((o) => o.entity.type === 'text_link')) return { ok: false, error: `Tag "${name}" inside a link ${at(i)}` }
    if (insidePre) {
      // <pre><code class="language-x">: one entity, pre with its language
      parent.hasChild = true
      if (entity.language !== undefined) parent.entity.language = entity.language
      open.push({ name, entity: { type: 'pre-code', offset: text.length, length: 0 }, hasChild: false })
    } else open.push({ name, entity, hasChild: false })
    if (parent) parent.hasChild = true
    i = end + 1
  }
  if (open.length) return { ok: false, error: `Can't find end tag corresponding to start tag "${open[open.length - 1]!.name}"` }
  return { ok: true, text, entities: entities.filter((e) => e.type !== 'pre-code').sort((a, b) => a.offset - b.offset) }

  function fromCodePoint(reference: string): string | undefined {
    const code = reference[1] === 'x' || reference[1] === 'X' ? parseInt(reference.slice(2), 16) : parseInt(reference.slice(1), 10)
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : undefined
  }
  function decode(value: string): string | undefined {
    let out = ''
    for (let k = 0; k < value.length; ) {
      if (value[k] !== '&') {
        out += value[k++]
        continue
      }
      const match = /^&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);/.exec(value.slice(k, k + 12))
      const decoded = match ? (match[1]![0] === '#' ? fromCodePoint(match[1]!) : ENTITY_NAMES[match[1]!]) : undefined
      if (decoded === undefined) return undefined
      out += decoded
      k += match![0].length
    }
    return out
  }
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
    chatActions: [],
    unsupportedTags: new Set(),
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
  const badRequest = (what: string) => Response.json({ ok: false, error_code: 400, description: `Bad Request: ${what}` }, { status: 400 })

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
      case 'sendChatAction':
        fake.chatActions.push({ chat_id: String(body.chat_id), action: body.action, at: performance.now() })
        return ok(true)
      case 'sendMessage': {
        let visible = String(body.text ?? '')
        let entities: TelegramEntity[] = []
        if (body.parse_mode === 'HTML') {
          const parsed = parseTelegramHtml(visible, { unsupportedTags: fake.unsupportedTags })
          if (!parsed.ok) return badRequest(`can't parse entities: ${parsed.error}`)
          ;({ text: visible, entities } = parsed)
        } else if (body.parse_mode !== undefined) return badRequest(`unsupported parse_mode ${body.parse_mode}`)
        if (visible.trim() === '') return badRequest('message text is empty')
        if (visible.length > 4096) return badRequest('message is too long')
        const message_id = nextMessageId++
        fake.sent.push({ chat_id: String(body.chat_id), text: body.text, message_id, at: performance.now(), visible, entities, ...(body.parse_mode ? { parse_mode: body.parse_mode } : {}) })
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
