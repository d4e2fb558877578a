import type { Api } from 'grammy'
import type { TelegramChannel as TelegramConfig } from '../../config/schema'
import { outboundFetch } from '../../net/outbound'
import { PermanentError, withRetries, type Sender } from '../channel'
import { describe, isGrammyError, loadGrammy } from './grammy'

/** Telegram's limit for one message. */
export const TELEGRAM_MAX_TEXT = 4096

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

/** How long the polling source's long poll waits (Telegram's `timeout`, seconds) unless told otherwise. */
export const DEFAULT_POLL_TIMEOUT_SECONDS = 30

/**
 * Telegram's outbound half: sendMessage through grammY's API client, split at Telegram's limit, retried on 429
 * (after the wait Telegram asks for), 5xx and network errors. The same API client serves the polling source.
 */
export class TelegramSender implements Sender {
  readonly type = 'telegram' as const
  private client: Promise<Api> | null = null

  constructor(
    readonly name: string,
    private readonly config: TelegramConfig,
    private readonly options: { pollTimeoutSeconds?: number } = {},
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
    let lastId = ''
    for (const part of splitMessage(text)) {
      const sent = await withRetries(
        async () => {
          try {
            return await api.sendMessage(chatId, part)
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
}
