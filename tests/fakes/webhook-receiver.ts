import { createHmac, timingSafeEqual } from 'node:crypto'

/** One delivery as the receiver saw it. */
export interface Delivery {
  body: any
  /** the signature matches "<timestamp>.<raw body>" and the timestamp is within 300 s of this clock */
  signatureValid: boolean
  timestamp: string | null
  eventId: string | null
}

/** A program receiving the webhook channel's deliveries: checks each signature and records what came. */
export interface FakeReceiver {
  url: string
  received: Delivery[]
  /** the next deliveries are answered with these statuses, in order (then 200) */
  statuses: number[]
  /** when set, every delivery is answered 307 with this Location */
  redirectTo: string | null
  stop: () => void
}

/** Verifies a delivery the way the README tells receivers to. */
export function verifyDelivery(secret: string, headers: Headers, raw: string, nowMs = Date.now()): boolean {
  const timestamp = headers.get('x-xopcbot-timestamp') ?? ''
  if (!/^\d+$/.test(timestamp) || Math.abs(Math.floor(nowMs / 1000) - Number(timestamp)) > 300) return false
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`)
  const given = Buffer.from(headers.get('x-xopcbot-signature') ?? '')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export function startWebhookReceiver(secret: string): FakeReceiver {
  const fake: Omit<FakeReceiver, 'url' | 'stop'> = { received: [], statuses: [], redirectTo: null }
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const raw = await request.text()
      fake.received.push({
        body: JSON.parse(raw),
        signatureValid: verifyDelivery(secret, request.headers, raw),
        timestamp: request.headers.get('x-xopcbot-timestamp'),
        eventId: request.headers.get('x-xopcbot-event-id'),
      })
      if (fake.redirectTo) return new Response(null, { status: 307, headers: { location: fake.redirectTo } })
      const status = fake.statuses.shift() ?? 200
      return new Response(status === 200 ? '{"ok":true}' : '{"error":"nope"}', { status, headers: { 'content-type': 'application/json' } })
    },
  })
  return Object.assign(fake, { url: `http://127.0.0.1:${server.port}/hook`, stop: () => void server.stop(true) })
}
