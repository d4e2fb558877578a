import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import type { WebhookChannel as WebhookConfig } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { describeIssues } from '../validation'
import { PermanentError, withRetries, type Channel, type ChannelState, type Incoming } from './channel'

export const SIGNATURE_HEADER = 'x-xopcbot-signature'

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

export function signatureMatches(secret: string, body: string, given: string | null): boolean {
  if (!given) return false
  const expected = Buffer.from(sign(secret, body))
  const actual = Buffer.from(given.trim())
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

export const WebhookEvent = z.strictObject({
  event: z.literal('message', 'only "message" events are accepted'),
  data: z.strictObject({
    chat_id: z.union([z.string().min(1).max(256), z.int()], 'must be a string or an integer'),
    content: z.string().min(1, 'must be a non-empty string').max(100_000),
    sender: z.string().max(256).optional(),
  }),
})

/**
 * A channel for any program (SPEC §8): events come in at POST /api/webhook/<name>, signed with the channel's
 * secret; replies go out as signed POSTs to `url`, retried on 5xx and network errors.
 */
export class WebhookChannel implements Channel {
  readonly type = 'webhook' as const
  private current: ChannelState = { state: 'stopped' }

  constructor(
    readonly name: string,
    private readonly config: WebhookConfig,
    private readonly accept: (message: Incoming) => string,
    private readonly log: Logger,
  ) {}

  async start() {
    this.current = { state: 'running' }
  }

  async stop() {
    this.current = { state: 'stopped' }
  }

  state() {
    return this.current
  }

  async send(chatId: string, text: string, inReplyTo?: string): Promise<string> {
    const messageId = `wh_${randomUUID()}`
    const body = JSON.stringify({ event: 'message', data: { chat_id: chatId, content: text, message_id: messageId, ...(inReplyTo ? { in_reply_to: inReplyTo } : {}) } })
    await withRetries(
      async (attempt) => {
        let response: Response
        try {
          response = await fetch(this.config.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(this.config.secret, body), 'user-agent': 'xopcbot-gateway' },
            body,
            signal: AbortSignal.timeout(15_000),
          })
        } catch (error) {
          this.log.warn('webhook delivery failed; retrying', { channel: this.name, attempt, err: (error as Error).message })
          throw new Error(`cannot reach ${new URL(this.config.url).origin}: ${(error as Error).message}`)
        }
        if (response.ok) return
        const detail = `${this.config.url} answered HTTP ${response.status}`
        if (response.status >= 500 || response.status === 429) {
          this.log.warn('webhook delivery failed; retrying', { channel: this.name, attempt, status: response.status })
          throw new Error(detail)
        }
        throw new PermanentError(detail)
      },
      { attempts: this.config.retry.attempts, baseDelayMs: this.config.retry.baseDelayMs, maxDelayMs: 30_000 },
    )
    return messageId
  }

  async receive(request: Request, raw: string, body: unknown) {
    if (!signatureMatches(this.config.secret, raw, request.headers.get(SIGNATURE_HEADER))) {
      throw new AppError('UNAUTHORIZED', `missing or wrong ${SIGNATURE_HEADER}: send "sha256=<hex HMAC-SHA256 of the raw body with the channel secret>"`)
    }
    const parsed = WebhookEvent.safeParse(body, { reportInput: true })
    if (!parsed.success) throw new AppError('INVALID_REQUEST', describeIssues(parsed.error.issues).join('; '))
    const { chat_id, content, sender } = parsed.data.data
    const id = this.accept({ channel: this.name, chatId: String(chat_id), content, sender: sender ?? null })
    return { status: 200, body: { status: 'ok', message_id: id } }
  }
}
