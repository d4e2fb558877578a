import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { AppError } from '../../errors'

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

/** A checked signature (its hex digest, which identifies the request), or why it was refused. */
export type SignatureCheck = { ok: true; digest: string } | { ok: false; problem: string }

/**
 * Checks a request's timestamp and signature (the digests compared in constant time). Never tells what the
 * signature should have been.
 */
export function checkSignature(secret: string, headers: Headers, raw: string, nowMs: number): SignatureCheck {
  const timestamp = headers.get(TIMESTAMP_HEADER)?.trim() ?? ''
  if (!TIMESTAMP.test(timestamp)) return { ok: false, problem: `missing or malformed X-Xopcbot-Timestamp: ${HOW_TO_SIGN}` }
  const given = SIGNATURE.exec(headers.get(SIGNATURE_HEADER)?.trim() ?? '')?.[1]?.toLowerCase()
  const expected = createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest()
  if (!given || !timingSafeEqual(Buffer.from(given, 'hex'), expected)) return { ok: false, problem: `missing or wrong X-Xopcbot-Signature: ${HOW_TO_SIGN}` }
  const nowSeconds = Math.floor(nowMs / 1000)
  const skew = Number(timestamp) - nowSeconds
  if (Math.abs(skew) > TIMESTAMP_TOLERANCE_SECONDS) {
    return {
      ok: false,
      problem: `X-Xopcbot-Timestamp is ${Math.abs(skew)} s ${skew < 0 ? 'old' : 'in the future'}; it must be within ${TIMESTAMP_TOLERANCE_SECONDS} s of the gateway's clock (now ${nowSeconds}): sign each request with the current time when you send it`,
    }
  }
  return { ok: true, digest: given }
}

/** `checkSignature` for callers that want a refusal thrown: the digest, or UNAUTHORIZED with the reason. */
export function verifySignature(secret: string, headers: Headers, raw: string, nowMs: number): string {
  const check = checkSignature(secret, headers, raw, nowMs)
  if (!check.ok) throw new AppError('UNAUTHORIZED', check.problem)
  return check.digest
}

/** The X-Xopcbot-Event-Id of a request: null without one, `{ problem }` when it is not 1-200 printable characters. */
export function eventIdOf(headers: Headers): { id: string | null } | { problem: string } {
  const id = headers.get(EVENT_ID_HEADER)
  if (id === null) return { id: null }
  if (!EVENT_ID.test(id)) return { problem: 'X-Xopcbot-Event-Id must be 1-200 printable ASCII characters' }
  return { id }
}

export const WebhookEvent = z.strictObject({
  event: z.literal('message', 'only "message" events are accepted'),
  data: z.strictObject({
    chat_id: z.union([z.string().min(1).max(256), z.int()], 'must be a string or an integer'),
    content: z.string().min(1, 'must be a non-empty string').max(100_000),
    sender: z.string().max(256).optional(),
  }),
})
