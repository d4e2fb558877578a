import type { Api } from 'grammy'
import type { TelegramChannel as TelegramConfig } from '../../config/schema'
import type { Logger } from '../../logging/logger'
import { outboundFetch } from '../../net/outbound'
import { PermanentError, withRetries, type Sender } from '../channel'
import { htmlToPlainText, markdownToTelegramHtml, splitTelegramHtml, TELEGRAM_MAX_TEXT, visibleText } from './format'
import { describe, isGrammyError, loadGrammy } from './grammy'

export { TELEGRAM_MAX_TEXT }

/** Splits plain text into pieces Telegram accepts, preferring line breaks, then spaces; never inside a surrogate pair. */
export function splitMessage(text: string, limit = TELEGRAM_MAX_TEXT): string[] {
  const parts: string[] = []
  let rest = text
  while (rest.length > limit) {
    let cut = rest.lastIndexOf('\n', limit)
    if (cut < limit / 2) cut = rest.lastIndexOf(' ', limit)
    if (cut < limit / 2) cut = /[\uD800-\uDBFF]/.test(rest[limit - 1]!) ? limit - 1 : limit
    parts.push(rest.slice(0, cut))
    rest = rest.slice(cut).replace(/^[\n ]/, '')
  }
  if (rest.length || parts.length === 0) parts.push(rest)
  return parts
}

/** How long the polling source's long poll waits (Telegram's `timeout`, seconds) unless told otherwise. */
export const DEFAULT_POLL_TIMEOUT_SECONDS = 30

/** Telegram shows "typing…" for about 5 s after a sendChatAction: it is sent again this often while a turn runs. */
export const TYPING_RENEW_MS = 4000

/**
 * XOPCBOT_TEST_TYPING_RENEW_MS="<ms>" (test-only, like XOPCBOT_TEST_CHANNEL_BACKOFF_MS): end-to-end tests renew
 * "typing…" more often, so that proving it stops takes a second, not half a minute. Null when unset; an error
 * message when malformed.
 */
export function typingRenewFromEnv(value: string | undefined): number | null | string {
  if (value === undefined || value === '') return null
  const ms = /^\d{1,6}$/.test(value) ? Number(value) : 0
  if (ms < 50) return `XOPCBOT_TEST_TYPING_RENEW_MS must be a whole number of milliseconds from 50 to 999999 (got ${JSON.stringify(value)}); ${TYPING_RENEW_MS} ms applies`
  return ms
}

/**
 * Telegram refused the formatting of a message: it could not parse it ("can't parse entities"), or the
 * formatting is more than it takes (ENTITIES_TOO_LONG: many long link URLs). The message is sent as plain text.
 */
class UnparsableEntities extends PermanentError {}
const REFUSED_FORMATTING = /can't parse entities|entities_too_long/i

/**
 * Telegram's outbound half: the text (Markdown, as the models write it) is sent as Telegram HTML
 * (./format.ts), split at Telegram's limit; a message Telegram cannot parse is sent again as plain text.
 * Retried on 429 (after the wait Telegram asks for), 5xx and network errors. The same API client serves the
 * polling source.
 */
export class TelegramSender implements Sender {
  readonly type = 'telegram' as const
  private client: Promise<Api> | null = null

  constructor(
    readonly name: string,
    private readonly config: TelegramConfig,
    private readonly options: { pollTimeoutSeconds?: number; log?: Logger; typingRenewMs?: number } = {},
  ) {}

  /** Telegram's long-poll `timeout`; the API client's own request timeout is set 30 s above it. */
  get pollTimeoutSeconds(): number {
    return this.options.pollTimeoutSeconds ?? DEFAULT_POLL_TIMEOUT_SECONDS
  }

  /** The bot's API client, created on first use. */
  api(): Promise<Api> {
    this.client ??= loadGrammy().then(
      (grammy) =>
        // Requests go through outboundFetch: a redirect is refused, never followed with the token in its path.
        new grammy.Api(this.config.token!, {
          apiRoot: this.config.apiRoot.replace(/\/+$/, ''),
          fetch: ((input: string | URL | Request, init?: RequestInit) => outboundFetch(input, init)) as unknown as typeof fetch,
          // grammY's default is 500 s: a connection that dies silently (a laptop waking up, a NAT forgetting it)
          // would keep a long poll hanging that long before the supervisor could reconnect.
          timeoutSeconds: this.pollTimeoutSeconds + 30,
        }),
    )
    return this.client
  }

  async send(chatId: string, text: string): Promise<string> {
    const api = await this.api()
    // Telegram refuses a message with nothing to show; such a text goes as it is, and Telegram says why.
    const chunks = splitTelegramHtml(markdownToTelegramHtml(text)).filter((chunk) => visibleText(chunk).trim() !== '')
    if (chunks.length === 0) return this.deliver(api, chatId, text)
    let lastId = ''
    for (const chunk of chunks) {
      try {
        lastId = await this.deliver(api, chatId, chunk, 'HTML')
      } catch (error) {
        if (!(error instanceof UnparsableEntities)) throw error
        this.options.log?.warn('Telegram could not parse a formatted message; sending it as plain text', { channel: this.name, chatId, reason: error.message })
        // A blank part (the end of a text that a link's URL took past the limit) would be refused as empty.
        for (const part of splitMessage(htmlToPlainText(chunk))) if (part.trim() !== '') lastId = await this.deliver(api, chatId, part)
      }
    }
    return lastId
  }

  /** One sendMessage, retried; resolves to its message id. */
  private async deliver(api: Api, chatId: string, text: string, parseMode?: 'HTML'): Promise<string> {
    const sent = await withRetries(
      async () => {
        try {
          return await api.sendMessage(chatId, text, parseMode ? { parse_mode: parseMode } : {})
        } catch (error) {
          if (isGrammyError(error) && error.error_code === 400 && parseMode && REFUSED_FORMATTING.test(error.description)) throw new UnparsableEntities(error.description)
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
      if (error instanceof UnparsableEntities) throw error
      throw new Error(error instanceof PermanentError ? error.message : `could not deliver to Telegram: ${describe(error)}`)
    })
    return String(sent.message_id)
  }

  /**
   * "typing…" in the chat until the returned function is called. Best effort: a chat action that fails (a chat
   * id Telegram does not know, a rate limit, no network) is logged at debug and changes nothing else; one still
   * under way when the next is due is not doubled, and stopping cancels it.
   */
  showTyping(chatId: string): () => void {
    let stopped = false
    let inFlight: AbortController | null = null
    const tick = () => {
      if (stopped || inFlight) return
      const request = new AbortController()
      inFlight = request
      this.api()
        .then((api) => api.sendChatAction(chatId, 'typing', {}, request.signal as never))
        .catch((error) => {
          if (!request.signal.aborted) this.options.log?.debug('sendChatAction failed', { channel: this.name, chatId, err: describe(error) })
        })
        .finally(() => {
          if (inFlight === request) inFlight = null
        })
    }
    tick()
    const timer = setInterval(tick, this.options.typingRenewMs ?? TYPING_RENEW_MS)
    return () => {
      stopped = true
      clearInterval(timer)
      inFlight?.abort()
    }
  }
}
