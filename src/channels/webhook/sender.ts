import { randomUUID } from 'node:crypto'
import type { WebhookChannel as WebhookConfig } from '../../config/schema'
import type { Logger } from '../../logging/logger'
import { outboundFetch, RedirectRefused } from '../../net/outbound'
import { PermanentError, withRetries, type Sender } from '../channel'
import { signatureHeaders } from './signature'

/**
 * The webhook channel's outbound half (SPEC §8): a reply goes out as a POST to `url`, signed with the channel's
 * secret over a timestamp and the body, retried on 5xx, 429 and network errors, never following a redirect.
 */
export class WebhookSender implements Sender {
  readonly type = 'webhook' as const
  private readonly now: () => number

  constructor(
    readonly name: string,
    private readonly config: WebhookConfig,
    private readonly deps: { log: Logger; /** epoch ms (default Date.now) */ now?: () => number },
  ) {
    this.now = deps.now ?? Date.now
  }

  /** The message id doubles as the event id, so a receiver can recognise the gateway's retries. */
  async send(chatId: string, text: string, inReplyTo?: string): Promise<string> {
    const log = this.deps.log
    const origin = new URL(this.config.url).origin
    const messageId = `wh_${randomUUID()}`
    const body = JSON.stringify({ event: 'message', data: { chat_id: chatId, content: text, message_id: messageId, ...(inReplyTo ? { in_reply_to: inReplyTo } : {}) } })
    await withRetries(
      async (attempt) => {
        let response: Response
        try {
          response = await outboundFetch(
            this.config.url,
            {
              method: 'POST',
              // Signed per attempt: a retry carries a fresh timestamp and the same event id.
              headers: { 'content-type': 'application/json', 'user-agent': 'xopcbot-gateway', ...signatureHeaders(this.config.secret, body, this.now(), messageId) },
              body,
              signal: AbortSignal.timeout(15_000),
            },
            // Only the origin: a receiver's path or query may hold a token of its own.
            { target: origin },
          )
        } catch (error) {
          if (error instanceof RedirectRefused) {
            log.warn('webhook receiver answered with a redirect; not followed', { channel: this.name, attempt, status: error.status })
            throw new PermanentError(error.message)
          }
          log.warn('webhook delivery failed; retrying', { channel: this.name, attempt, err: (error as Error).message })
          throw new Error(`cannot reach ${origin}: ${(error as Error).message}`)
        }
        if (response.ok) return
        const detail = `${origin} answered HTTP ${response.status}`
        if (response.status >= 500 || response.status === 429) {
          log.warn('webhook delivery failed; retrying', { channel: this.name, attempt, status: response.status })
          throw new Error(detail)
        }
        throw new PermanentError(detail)
      },
      { attempts: this.config.retry.attempts, baseDelayMs: this.config.retry.baseDelayMs, maxDelayMs: 30_000 },
    )
    return messageId
  }
}
