import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import type { WebhookChannel as WebhookConfig } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { outboundFetch, RedirectRefused } from '../net/outbound'
import type { WebhookEventLog } from '../storage/webhook-events'
import { describeIssues } from '../validation'
import { PermanentError, withRetries, type Channel, type ChannelState, type Incoming } from './channel'

export const TIMESTAMP_HEADER = 'x-xopcbot-timestamp'
export const SIGNATURE_HEADER = 'x-xopcbot-signature'
export const EVENT_ID_HEADER = 'x-xopcbot-event-id'
/** How far a request's timestamp may be from the gateway's clock, either way (SPEC §8). */
export const TIMESTAMP_TOLERANCE_SECONDS = 300

const HOW_TO_SIGN = `send X-Xopcbot-Timestamp: <unix seconds> and X-Xopcbot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the channel secret>`

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: how a webhook request is signed, in either direction. */
export function sign(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** The headers that sign `body`, sent at `nowMs`, as event `eventId`. */
export function signatureHeaders(secret: string, body: string, nowMs: number, eventId: string): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000)
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: sign(secret, timestamp, body), [EVENT_ID_HEADER]: eventId }
}

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i
const TIMESTAMP = /^\d{1,12}$/
/** Printable ASCII, so that an id is safe to store, log and compare. */
const EVENT_ID = /^[\x20-\x7e]{1,200}$/

/**
 * Checks a request's timestamp and signature (the digests compared in constant time); returns the signature's
 * hex digest, which identifies the request. Never tells what the signature should have been.
 */
export function verifySignature(secret: string, headers: Headers, raw: string, nowMs: number): string {
  const timestamp = headers.get(TIMESTAMP_HEADER)?.trim() ?? ''
  if (!TIMESTAMP.test(timestamp)) throw new AppError('UNAUTHORIZED', `missing or malformed X-Xopcbot-Timestamp: ${HOW_TO_SIGN}`)
  const given = SIGNATURE.exec(headers.get(SIGNATURE_HEADER)?.trim() ?? '')?.[1]?.toLowerCase()
  const expected = createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest()
  if (!given || !timingSafeEqual(Buffer.from(given, 'hex'), expected)) {
    throw new AppError('UNAUTHORIZED', `missing or wrong X-Xopcbot-Signature: ${HOW_TO_SIGN}`)
  }
  const nowSeconds = Math.floor(nowMs / 1000)
  const skew = Number(timestamp) - nowSeconds
  if (Math.abs(skew) > TIMESTAMP_TOLERANCE_SECONDS) {
    throw new AppError(
      'UNAUTHORIZED',
      `X-Xopcbot-Timestamp is ${Math.abs(skew)} s ${skew < 0 ? 'old' : 'in the future'}; it must be within ${TIMESTAMP_TOLERANCE_SECONDS} s of the gateway's clock (now ${nowSeconds}): sign each request with the current time when you send it`,
    )
  }
  return given
}

/** The X-Xopcbot-Event-Id of a request, or null without one; 400 when it is not 1-200 printable characters. */
export function eventIdOf(headers: Headers): string | null {
  const id = headers.get(EVENT_ID_HEADER)
  if (id === null) return null
  if (!EVENT_ID.test(id)) throw new AppError('INVALID_REQUEST', 'X-Xopcbot-Event-Id must be 1-200 printable ASCII characters')
  return id
}

export const WebhookEvent = z.strictObject({
  event: z.literal('message', 'only "message" events are accepted'),
  data: z.strictObject({
    chat_id: z.union([z.string().min(1).max(256), z.int()], 'must be a string or an integer'),
    content: z.string().min(1, 'must be a non-empty string').max(100_000),
    sender: z.string().max(256).optional(),
  }),
})

export interface WebhookChannelDeps {
  /** Stores one message, running `alongside` in the same transaction; resolves to its id. */
  accept: (message: Incoming, alongside: () => void) => string
  /** event ids and signatures accepted recently */
  events: WebhookEventLog
  log: Logger
  /** epoch ms (default Date.now) */
  now?: () => number
}

/**
 * A channel for any program (SPEC §8): events come in at POST /api/webhook/<name>, signed with the channel's
 * secret over a timestamp and the body; replies go out as POSTs to `url` signed the same way, retried on 5xx
 * and network errors, never following a redirect.
 *
 * Replays: a request is accepted only within ±300 s of its timestamp, and its event id and signature are
 * remembered for 10 minutes (in the same transaction as its message), so the same event — resent by its
 * sender or replayed by someone who captured it — gives one turn.
 */
export class WebhookChannel implements Channel {
  readonly type = 'webhook' as const
  private current: ChannelState = { state: 'stopped' }
  private readonly log: Logger
  private readonly now: () => number

  constructor(
    readonly name: string,
    private readonly config: WebhookConfig,
    private readonly deps: WebhookChannelDeps,
  ) {
    this.log = deps.log
    this.now = deps.now ?? Date.now
  }

  async start() {
    this.current = { state: 'running' }
  }

  async stop() {
    this.current = { state: 'stopped' }
  }

  state() {
    return this.current
  }

  /** The message id doubles as the event id, so a receiver can recognise the gateway's retries. */
  async send(chatId: string, text: string, inReplyTo?: string): Promise<string> {
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
            { target: new URL(this.config.url).origin },
          )
        } catch (error) {
          if (error instanceof RedirectRefused) {
            this.log.warn('webhook receiver answered with a redirect; not followed', { channel: this.name, attempt, status: error.status })
            throw new PermanentError(error.message)
          }
          this.log.warn('webhook delivery failed; retrying', { channel: this.name, attempt, err: (error as Error).message })
          throw new Error(`cannot reach ${new URL(this.config.url).origin}: ${(error as Error).message}`)
        }
        if (response.ok) return
        const detail = `${new URL(this.config.url).origin} answered HTTP ${response.status}`
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
    const nowMs = this.now()
    const signature = verifySignature(this.config.secret, request.headers, raw, nowMs)
    const eventId = eventIdOf(request.headers)
    const parsed = WebhookEvent.safeParse(body, { reportInput: true })
    if (!parsed.success) throw new AppError('INVALID_REQUEST', describeIssues(parsed.error.issues).join('; '))
    // The signature is remembered even when the sender names the event: the event id is not signed, so a
    // captured request replayed under a new id is still the same request.
    const keys = eventId === null ? [`sig:${signature}`] : [`id:${eventId}`, `sig:${signature}`]
    if (this.deps.events.seen(this.name, keys, nowMs)) {
      this.log.info('webhook event already accepted; ignored', { channel: this.name, ...(eventId === null ? {} : { eventId }) })
      return { status: 200, body: { status: 'ok', duplicate: true } }
    }
    const { chat_id, content, sender } = parsed.data.data
    // Nothing is awaited between the check above and this transaction, so no other request can slip in between.
    const id = this.deps.accept({ channel: this.name, chatId: String(chat_id), content, sender: sender ?? null }, () => this.deps.events.record(this.name, keys, nowMs))
    return { status: 200, body: { status: 'ok', message_id: id } }
  }
}
