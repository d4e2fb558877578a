import { timingSafeEqual } from 'node:crypto'
import type { Message, Update } from 'grammy/types'
import { z } from 'zod'
import type { TelegramChannel as TelegramConfig } from '../../config/schema'
import type { Logger } from '../../logging/logger'
import { RedirectRefused } from '../../net/outbound'
import type { InboundRequest, Incoming, Received, Source } from '../channel'
import type { PairingStore } from '../pairing'
import { Supervisor, type Backoff, type Fault, type Session, type Timer } from '../supervisor'
import { describeIssues } from '../../validation'
import { BotIdentity, decideAccess, pairingReply, type Access } from './access'
import { describe, isGrammyError, loadedGrammy } from './grammy'
import type { TelegramSender } from './sender'

export const SECRET_HEADER = 'x-telegram-bot-api-secret-token'

export interface TelegramSourceDeps {
  /** the channel's outbound half: its API client, and how a pairing code is sent */
  sender: TelegramSender
  /** Stores the messages of a batch of updates and the next offset in one transaction; returns nothing. */
  acceptUpdates: (messages: Incoming[], nextOffset: number) => void
  /** the stored offset (the id after the last update that was stored), or null */
  storedOffset: () => number | null
  /** approvals of senders, and codes for the unknown ones (dmPolicy "pairing") */
  pairing: PairingStore
  log: Logger
  /** reconnect waits (default: 1 s doubling to 60 s, ±20 %) */
  backoff?: Backoff
  /** the clock and the timer of the reconnect waits */
  timer?: Timer
}

/**
 * Telegram's inbound half (SPEC §8). Polling: our own getUpdates loop, so that the offset is stored in the
 * database together with the messages — a restart neither drops nor repeats updates. Webhook: setWebhook on
 * start, and `receive` (POST /api/webhook/<name>) checks the secret header.
 *
 * The connection is supervised: getMe, then deleteWebhook + getUpdates (or setWebhook), and whatever fails on
 * the way — at start or hours later — is retried with capped backoff until the source is stopped. Only a
 * rejected token (401) or a redirect from the Bot API ends it in `failed`: retrying would not change them.
 */
export class TelegramSource implements Source {
  readonly type = 'telegram' as const
  private bot: BotIdentity | null = null
  private stopped = false
  private readonly supervisor: Supervisor
  /** where the Bot API is, without the token: the only part of its URLs that may appear in a message */
  private readonly apiHost: string

  constructor(
    readonly name: string,
    private readonly config: TelegramConfig,
    private readonly deps: TelegramSourceDeps,
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
    const api = await this.deps.sender.api()
    // A stop that came while grammY was loading must not be followed by a connection nobody will end.
    if (this.stopped) return
    // One value for both: the long poll must end before the API client's request timeout does.
    const pollTimeoutSeconds = this.deps.sender.pollTimeoutSeconds
    this.supervisor.start((session) => this.session(api, session, pollTimeoutSeconds))
  }

  /** Ends the connection, or the wait before the next attempt, at once. */
  async stop() {
    this.stopped = true
    await this.supervisor.stop()
  }

  /** One connection: from getMe until something fails (thrown) or the source is stopped. */
  private async session(api: Awaited<ReturnType<TelegramSender['api']>>, { signal, ready }: Session, pollTimeoutSeconds: number) {
    this.bot = BotIdentity.parse(await api.getMe(signal as never))
    if (this.config.mode === 'webhook') {
      const url = `${this.config.publicUrl!.replace(/\/+$/, '')}/api/webhook/${encodeURIComponent(this.name)}`
      await api.setWebhook(url, { secret_token: this.config.webhookSecret!, allowed_updates: ['message'] }, signal as never)
      this.deps.log.info('telegram webhook set', { channel: this.name, url })
      ready()
      // Telegram calls us from now on; there is nothing to watch until the source stops.
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
    const grammy = loadedGrammy()
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
    if (error instanceof z.ZodError) return { reason: `${this.apiHost} answered getMe with something that is not a bot: ${describeIssues(error.issues).join('; ')}` }
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
      this.deps.sender.send(chatId, pairingReply(code)).catch((error) => this.deps.log.warn('could not send the pairing code', { ...fields, err: describe(error) }))
    }
  }

  /** An update Telegram posted to the webhook: the secret header must match; the update is stored with its offset. */
  async receive({ headers, body }: InboundRequest): Promise<Received> {
    if (this.config.mode !== 'webhook') return { kind: 'refused', reason: 'not-found', message: `channel "${this.name}" uses polling; it takes no webhook requests` }
    const given = Buffer.from(headers.get(SECRET_HEADER) ?? '')
    const expected = Buffer.from(this.config.webhookSecret ?? '')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { kind: 'refused', reason: 'unauthorized', message: `missing or wrong ${SECRET_HEADER}` }
    const update = body as Update
    if (!update || typeof update.update_id !== 'number') return { kind: 'refused', reason: 'invalid', message: 'update_id: is required (a Telegram Update)' }
    this.deps.acceptUpdates(this.toIncoming([update]), update.update_id + 1)
    return { kind: 'accepted' }
  }
}
