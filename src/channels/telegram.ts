import { timingSafeEqual } from 'node:crypto'
import type { Api } from 'grammy'
import type { Message, Update } from 'grammy/types'
import { z } from 'zod'
import type { TelegramChannel as TelegramConfig } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { outboundFetch, RedirectRefused } from '../net/outbound'
import { PermanentError, withRetries, type Channel, type Incoming } from './channel'
import type { PairingStore } from './pairing'
import { Supervisor, type Backoff, type Fault, type Session, type Timer } from './supervisor'

/** Telegram's limit for one message. */
export const TELEGRAM_MAX_TEXT = 4096
export const SECRET_HEADER = 'x-telegram-bot-api-secret-token'

/** Splits text into pieces Telegram accepts, preferring line breaks, then spaces. */
export function splitMessage(text: string, limit = TELEGRAM_MAX_TEXT): string[] {
  const parts: string[] = []
  let rest = text
  while (rest.length > limit) {
    let cut = rest.lastIndexOf('\n', limit)
    if (cut < limit / 2) cut = rest.lastIndexOf(' ', limit)
    if (cut < limit / 2) cut = limit
    parts.push(rest.slice(0, cut))
    rest = rest.slice(cut).replace(/^[\n ]/, '')
  }
  if (rest.length || parts.length === 0) parts.push(rest)
  return parts
}

/** The bot's own account, from getMe: mentions and replies in groups are recognised by it. */
export const BotIdentity = z.object({ id: z.int(), username: z.string().min(1) })
export type BotIdentity = z.infer<typeof BotIdentity>

type AccessConfig = Pick<TelegramConfig, 'allowFrom' | 'dmPolicy' | 'groupPolicy' | 'groups' | 'requireMention'>

/** Whether a message reaches the agent, and with what text; a refusal says why (for the log) and whether to offer pairing. */
export type Access = { admit: true; content: string } | { admit: false; reason: string; offerPairing?: boolean }

export function inAllowFrom(allowFrom: AccessConfig['allowFrom'], from: { id: number; username?: string }): boolean {
  const username = from.username?.toLowerCase()
  return allowFrom.some((entry) => String(entry) === String(from.id) || (!!username && String(entry).replace(/^@/, '').toLowerCase() === username))
}

/** The message names the bot: a mention entity, a text mention of its account, a /command@bot, or its @username in the text. */
export function mentionsBot(message: Pick<Message, 'text' | 'entities'>, bot: BotIdentity): boolean {
  const text = message.text ?? ''
  const handle = `@${bot.username}`.toLowerCase()
  for (const entity of message.entities ?? []) {
    const part = text.slice(entity.offset, entity.offset + entity.length).toLowerCase()
    if (entity.type === 'mention' && part === handle) return true
    if (entity.type === 'text_mention' && entity.user.id === bot.id) return true
    if (entity.type === 'bot_command' && part.endsWith(handle)) return true
  }
  const lower = text.toLowerCase()
  for (let at = lower.indexOf(handle); at >= 0; at = lower.indexOf(handle, at + 1)) {
    if (!/\w/.test(lower[at - 1] ?? '') && !/\w/.test(lower[at + handle.length] ?? '')) return true
  }
  return false
}

/** "@bot, what time is it?" → "what time is it?"; a message that is nothing but the mention stays as it is. */
export function stripLeadingMention(text: string, bot: BotIdentity): string {
  const handle = `@${bot.username}`
  const trimmed = text.trimStart()
  if (trimmed.slice(0, handle.length).toLowerCase() !== handle.toLowerCase() || /\w/.test(trimmed[handle.length] ?? '')) return text
  const rest = trimmed.slice(handle.length).replace(/^[\s,:;.!-]+/, '')
  return rest || text
}

/**
 * Who may talk to the bot (SPEC §8). Direct messages: a sender in allowFrom always; then dmPolicy — "open"
 * everyone, "pairing" senders the owner approved (others are offered a code), "allowlist" no one else.
 * Groups: groupPolicy ("disabled", "allowlist" of chat ids in `groups`, "open"), then with requireMention only
 * messages that mention the bot or reply to it.
 */
export function decideAccess(message: Message, config: AccessConfig, bot: BotIdentity | null, isApproved: (senderId: string) => boolean): Access {
  const text = message.text ?? ''
  const { chat, from } = message
  if (chat.type === 'private') {
    if (!from) return { admit: false, reason: 'no sender' }
    if (inAllowFrom(config.allowFrom, from) || config.dmPolicy === 'open') return { admit: true, content: text }
    if (config.dmPolicy === 'pairing') {
      return isApproved(String(from.id)) ? { admit: true, content: text } : { admit: false, reason: 'sender not approved (dmPolicy "pairing")', offerPairing: true }
    }
    return { admit: false, reason: 'sender not in allowFrom (dmPolicy "allowlist")' }
  }
  if (chat.type === 'group' || chat.type === 'supergroup') {
    if (config.groupPolicy === 'disabled') return { admit: false, reason: 'group chats are off (groupPolicy "disabled")' }
    if (config.groupPolicy === 'allowlist' && !config.groups.some((id) => String(id) === String(chat.id))) {
      return { admit: false, reason: 'group not in groups (groupPolicy "allowlist")' }
    }
    if (!config.requireMention) return { admit: true, content: text }
    if (!bot) return { admit: false, reason: "the bot's own username is not known (getMe)" }
    const repliesToBot = message.reply_to_message?.from?.id === bot.id
    if (!repliesToBot && !mentionsBot(message, bot)) return { admit: false, reason: 'the bot was not mentioned (requireMention)' }
    return { admit: true, content: stripLeadingMention(text, bot) }
  }
  return { admit: false, reason: `${chat.type} chats are not handled` }
}

export const pairingReply = (code: string) =>
  `xopcbot: access not configured. Your pairing code: ${code} (valid for 1 hour). Ask the owner to run: xopcbot pairing approve ${code}`

let grammy: typeof import('grammy') | null = null
const isGrammyError = (error: unknown): error is import('grammy').GrammyError => !!grammy && error instanceof grammy.GrammyError

export interface TelegramDeps {
  /** Stores the messages of a batch of updates and the next offset in one transaction; returns nothing. */
  acceptUpdates: (messages: Incoming[], nextOffset: number) => void
  /** the stored offset (the id after the last update that was stored), or null */
  storedOffset: () => number | null
  /** approvals of senders, and codes for the unknown ones (dmPolicy "pairing") */
  pairing: PairingStore
  log: Logger
  /** long-poll timeout in seconds (Telegram's `timeout`) */
  pollTimeoutSeconds?: number
  /** reconnect waits (default: 1 s doubling to 60 s, ±20 %) */
  backoff?: Backoff
  /** the clock and the timer of the reconnect waits */
  timer?: Timer
}

/**
 * Telegram through grammY's API client (SPEC §8). Polling: our own getUpdates loop, so that the offset is
 * stored in the database together with the messages — a restart neither drops nor repeats updates.
 * Webhook: setWebhook on start, and POST /api/webhook/<name> checks the secret header.
 *
 * The connection is supervised: getMe, then deleteWebhook + getUpdates (or setWebhook), and whatever fails on
 * the way — at start or hours later — is retried with capped backoff until the channel is stopped. Only a
 * rejected token (401) or a redirect from the Bot API ends it in `failed`: retrying would not change them.
 */
export class TelegramChannel implements Channel {
  readonly type = 'telegram' as const
  private api: Api | null = null
  private bot: BotIdentity | null = null
  private stopped = false
  private readonly supervisor: Supervisor
  /** where the Bot API is, without the token: the only part of its URLs that may appear in a message */
  private readonly apiHost: string

  constructor(
    readonly name: string,
    private readonly config: TelegramConfig,
    private readonly deps: TelegramDeps,
  ) {
    this.apiHost = new URL(config.apiRoot).host
    this.supervisor = new Supervisor({
      channel: name,
      log: deps.log,
      classify: (error) => this.classify(error),
      ...(deps.backoff ? { backoff: deps.backoff } : {}),
      ...(deps.timer ? { timer: deps.timer } : {}),
    })
  }

  state() {
    return this.supervisor.state()
  }

  /** Starts the supervised connection in the background; its progress shows in `state()`. */
  async start() {
    this.stopped = false
    // grammY is loaded with the first Telegram channel that starts.
    grammy ??= await import('grammy')
    // A stop that came while grammY was loading must not be followed by a connection nobody will end.
    if (this.stopped) return
    const pollTimeoutSeconds = this.deps.pollTimeoutSeconds ?? 30
    // Requests go through outboundFetch: a redirect is refused, never followed with the token in its path.
    this.api ??= new grammy.Api(this.config.token!, {
      apiRoot: this.config.apiRoot.replace(/\/+$/, ''),
      fetch: ((input: string | URL | Request, init?: RequestInit) => outboundFetch(input, init)) as unknown as typeof fetch,
      // grammY's default is 500 s: a connection that dies silently (a laptop waking up, a NAT forgetting it)
      // would keep a long poll hanging that long before the supervisor could reconnect.
      timeoutSeconds: pollTimeoutSeconds + 30,
    })
    this.supervisor.start((session) => this.session(session, pollTimeoutSeconds))
  }

  /** Ends the connection, or the wait before the next attempt, at once. */
  async stop() {
    this.stopped = true
    await this.supervisor.stop()
  }

  /** One connection: from getMe until something fails (thrown) or the channel is stopped. */
  private async session({ signal, ready }: Session, pollTimeoutSeconds: number) {
    const api = this.api!
    this.bot = BotIdentity.parse(await api.getMe(signal as never))
    if (this.config.mode === 'webhook') {
      const url = `${this.config.publicUrl!.replace(/\/+$/, '')}/api/webhook/${encodeURIComponent(this.name)}`
      await api.setWebhook(url, { secret_token: this.config.webhookSecret!, allowed_updates: ['message'] }, signal as never)
      this.deps.log.info('telegram webhook set', { channel: this.name, url })
      ready()
      // Telegram calls us from now on; there is nothing to watch until the channel stops.
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })))
      return
    }
    // getUpdates refuses to work while a webhook is set.
    await api.deleteWebhook({ drop_pending_updates: false }, signal as never)
    let offset = this.deps.storedOffset() ?? undefined
    // The first poll answers at once, so "running" means getUpdates answered — and a getUpdates that keeps
    // failing (409: another process polls this bot) keeps the backoff growing instead of resetting it.
    let timeout = 0
    while (!signal.aborted) {
      const updates = await api.getUpdates({ offset, timeout, allowed_updates: ['message'] }, signal as never)
      timeout = pollTimeoutSeconds
      if (updates.length) {
        offset = updates[updates.length - 1]!.update_id + 1
        this.deps.acceptUpdates(this.toIncoming(updates), offset)
      }
      // Only now is the connection sound: updates that cannot be stored (a full disk) keep the backoff growing.
      ready()
    }
  }

  /** What a failed call means for the connection; the reason never holds the token (only the API's host). */
  private classify(error: unknown): Fault {
    const inner = grammy && error instanceof grammy.HttpError ? error.error : error
    if (inner instanceof RedirectRefused) {
      return { permanent: true, reason: this.scrub(`${inner.message}; check channels.${this.name}.apiRoot`) }
    }
    if (isGrammyError(error)) {
      if (error.error_code === 401) return { permanent: true, reason: `Telegram rejected the bot token (401 Unauthorized); check channels.${this.name}.token` }
      const retryAfter = error.parameters.retry_after
      return { reason: this.scrub(`Telegram error ${error.error_code}: ${error.description}`), retryAfterMs: retryAfter ? retryAfter * 1000 : null }
    }
    if (grammy && error instanceof grammy.HttpError) {
      const cause = inner instanceof Error ? inner.message : error.message
      return { reason: this.scrub(`cannot reach ${this.apiHost}: ${cause}`) }
    }
    if (error instanceof z.ZodError) return { reason: `${this.apiHost} answered getMe with something that is not a bot: ${z.prettifyError(error).replace(/\s+/g, ' ')}` }
    return { reason: this.scrub(describe(error)) }
  }

  /** Removes the bot token from a text that came from elsewhere (an error message that quotes a URL). */
  private scrub(text: string): string {
    const token = this.config.token
    return token ? text.split(token).join('[REDACTED]') : text
  }

  /** The text messages of these updates that `decideAccess` admits; the others are logged (and maybe offered pairing). */
  private toIncoming(updates: Update[]): Incoming[] {
    const out: Incoming[] = []
    for (const update of updates) {
      const message = update.message
      if (!message?.text) continue
      const access = decideAccess(message, this.config, this.bot, (senderId) => this.deps.pairing.isApproved(this.name, senderId))
      if (!access.admit) {
        this.refuse(message, access)
        continue
      }
      out.push({
        channel: this.name,
        chatId: String(message.chat.id),
        content: access.content,
        sender: message.from?.username ?? (message.from ? String(message.from.id) : null),
        externalId: String(update.update_id),
      })
    }
    return out
  }

  /** Logs a refused message (never its text); an unknown direct sender gets one pairing code, sent outside the queue. */
  private refuse(message: Message, access: Extract<Access, { admit: false }>) {
    const fields = { channel: this.name, senderId: message.from?.id ?? null, chatId: message.chat.id }
    if (!access.offerPairing || !message.from) {
      this.deps.log.info('telegram message refused', { ...fields, reason: access.reason })
      return
    }
    const chatId = String(message.chat.id)
    const outcome = this.deps.pairing.request({ channel: this.name, senderId: String(message.from.id), username: message.from.username ?? null, chatId })
    if (outcome.status === 'pending') {
      this.deps.log.info('telegram message refused', { ...fields, reason: `${access.reason}; a pairing code was already sent` })
    } else if (outcome.status === 'full') {
      this.deps.log.warn('telegram message refused', { ...fields, reason: `${access.reason}; too many pairing requests are pending, no code was sent` })
    } else {
      const { code } = outcome.request
      this.deps.log.info('telegram message refused; pairing code sent', { ...fields, reason: access.reason, code })
      this.send(chatId, pairingReply(code)).catch((error) => this.deps.log.warn('could not send the pairing code', { ...fields, err: describe(error) }))
    }
  }

  async send(chatId: string, text: string): Promise<string> {
    let lastId = ''
    for (const part of splitMessage(text)) {
      const sent = await withRetries(
        async () => {
          try {
            if (!this.api) throw new PermanentError('the channel has not started')
            return await this.api.sendMessage(chatId, part)
          } catch (error) {
            if (isGrammyError(error) && error.error_code !== 429 && error.error_code < 500) throw new PermanentError(`Telegram refused the message (${error.error_code}: ${error.description})`)
            throw error
          }
        },
        {
          attempts: 6,
          baseDelayMs: 500,
          maxDelayMs: 10_000,
          delayFor: (error) => (isGrammyError(error) && error.parameters.retry_after ? error.parameters.retry_after * 1000 : null),
        },
      ).catch((error) => {
        throw new Error(error instanceof PermanentError ? error.message : `could not deliver to Telegram: ${describe(error)}`)
      })
      lastId = String(sent.message_id)
    }
    return lastId
  }

  async receive(request: Request, _raw: string, body: unknown) {
    if (this.config.mode !== 'webhook') throw new AppError('CHANNEL_NOT_FOUND', `channel "${this.name}" uses polling; it takes no webhook requests`)
    const given = Buffer.from(request.headers.get(SECRET_HEADER) ?? '')
    const expected = Buffer.from(this.config.webhookSecret ?? '')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AppError('UNAUTHORIZED', `missing or wrong ${SECRET_HEADER}`)
    const update = body as Update
    if (!update || typeof update.update_id !== 'number') throw new AppError('INVALID_REQUEST', 'update_id: is required (a Telegram Update)')
    this.deps.acceptUpdates(this.toIncoming([update]), update.update_id + 1)
    return { status: 200, body: { status: 'ok' } }
  }
}

function describe(error: unknown): string {
  if (isGrammyError(error)) return `Telegram error ${error.error_code}: ${error.description}`
  if (grammy && error instanceof grammy.HttpError) return `network error talking to Telegram: ${(error.error as Error)?.message ?? error.message}`
  return error instanceof Error ? error.message : String(error)
}
