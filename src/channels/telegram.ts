import { timingSafeEqual } from 'node:crypto'
import type { Api } from 'grammy'
import type { Update } from 'grammy/types'
import type { TelegramChannel as TelegramConfig } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { PermanentError, withRetries, type Channel, type ChannelState, type Incoming } from './channel'

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

let grammy: typeof import('grammy') | null = null
const isGrammyError = (error: unknown): error is import('grammy').GrammyError => !!grammy && error instanceof grammy.GrammyError

export interface TelegramDeps {
  /** Stores the messages of a batch of updates and the next offset in one transaction; returns nothing. */
  acceptUpdates: (messages: Incoming[], nextOffset: number) => void
  /** the stored offset (the id after the last update that was stored), or null */
  storedOffset: () => number | null
  log: Logger
  /** long-poll timeout in seconds (Telegram's `timeout`) */
  pollTimeoutSeconds?: number
}

/**
 * Telegram through grammY's API client (SPEC §8). Polling: our own getUpdates loop, so that the offset is
 * stored in the database together with the messages — a restart neither drops nor repeats updates.
 * Webhook: setWebhook on start, and POST /api/webhook/<name> checks the secret header.
 */
export class TelegramChannel implements Channel {
  readonly type = 'telegram' as const
  private api: Api | null = null
  private current: ChannelState = { state: 'stopped' }
  private abort = new AbortController()
  private loop: Promise<void> | null = null

  constructor(
    readonly name: string,
    private readonly config: TelegramConfig,
    private readonly deps: TelegramDeps,
  ) {}

  state() {
    return this.current
  }

  async start() {
    this.current = { state: 'starting' }
    this.abort = new AbortController()
    try {
      // grammY is loaded with the first Telegram channel that starts.
      grammy ??= await import('grammy')
      this.api ??= new grammy.Api(this.config.token!, { apiRoot: this.config.apiRoot.replace(/\/+$/, '') })
      if (this.config.mode === 'webhook') {
        const url = `${this.config.publicUrl!.replace(/\/+$/, '')}/api/webhook/${encodeURIComponent(this.name)}`
        await this.api.setWebhook(url, { secret_token: this.config.webhookSecret!, allowed_updates: ['message'] }, this.abort.signal as never)
        this.deps.log.info('telegram webhook set', { channel: this.name, url })
      } else {
        // getUpdates refuses to work while a webhook is set.
        await this.api.deleteWebhook({ drop_pending_updates: false }, this.abort.signal as never)
        this.loop = this.poll()
      }
      this.current = { state: 'running' }
    } catch (error) {
      this.current = { state: 'failed', error: describe(error) }
      throw error
    }
  }

  async stop() {
    this.abort.abort()
    const loop = this.loop
    this.loop = null
    if (loop) await Promise.race([loop, Bun.sleep(3000)])
    this.current = { state: 'stopped' }
  }

  private async poll() {
    let backoff = 1000
    let offset = this.deps.storedOffset() ?? undefined
    const signal = this.abort.signal
    while (!signal.aborted) {
      try {
        const updates = await this.api!.getUpdates({ offset, timeout: this.deps.pollTimeoutSeconds ?? 30, allowed_updates: ["message"] }, signal as never)
        backoff = 1000
        if (updates.length) {
          offset = updates[updates.length - 1]!.update_id + 1
          this.deps.acceptUpdates(this.toIncoming(updates), offset)
        }
        if (this.current.state === 'failed') this.current = { state: 'running' }
      } catch (error) {
        if (signal.aborted) break
        const wait = isGrammyError(error) && error.parameters.retry_after ? error.parameters.retry_after * 1000 : backoff
        if (isGrammyError(error) && error.error_code === 401) {
          this.current = { state: 'failed', error: 'Telegram rejected the bot token (401); check channels.telegram.token' }
          this.deps.log.error('telegram polling stopped: the bot token was rejected', { channel: this.name })
          return
        }
        this.current = { state: 'failed', error: describe(error) }
        this.deps.log.warn('telegram polling failed; retrying', { channel: this.name, retryInMs: wait, err: describe(error) })
        await Bun.sleep(wait)
        backoff = Math.min(backoff * 2, 30_000)
      }
    }
  }

  /** The text messages of these updates from allowed senders. */
  private toIncoming(updates: Update[]): Incoming[] {
    const out: Incoming[] = []
    for (const update of updates) {
      const message = update.message
      if (!message?.text) continue
      if (!this.allowed(message.from)) {
        this.deps.log.info('telegram message ignored: sender not in allowFrom', { channel: this.name, from: message.from?.id, username: message.from?.username })
        continue
      }
      out.push({
        channel: this.name,
        chatId: String(message.chat.id),
        content: message.text,
        sender: message.from?.username ?? (message.from ? String(message.from.id) : null),
        externalId: String(update.update_id),
      })
    }
    return out
  }

  private allowed(from: { id: number; username?: string } | undefined): boolean {
    const allow = this.config.allowFrom
    if (allow.length === 0) return true
    if (!from) return false
    return allow.some((entry) => String(entry) === String(from.id) || (!!from.username && String(entry).replace(/^@/, '').toLowerCase() === from.username.toLowerCase()))
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
