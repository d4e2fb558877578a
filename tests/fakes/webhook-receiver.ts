import { createHmac } from 'node:crypto'

/** A program receiving the webhook channel's deliveries: checks each signature and records what came. */
export interface FakeReceiver {
  url: string
  received: { body: any; signatureValid: boolean }[]
  /** the next deliveries are answered with these statuses, in order (then 200) */
  statuses: number[]
  stop: () => void
}

export function startWebhookReceiver(secret: string): FakeReceiver {
  const fake: Omit<FakeReceiver, 'url' | 'stop'> = { received: [], statuses: [] }
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const raw = await request.text()
      const expected = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`
      const status = fake.statuses.shift() ?? 200
      fake.received.push({ body: JSON.parse(raw), signatureValid: request.headers.get('x-xopcbot-signature') === expected })
      return new Response(status === 200 ? '{"ok":true}' : '{"error":"nope"}', { status, headers: { 'content-type': 'application/json' } })
    },
  })
  return Object.assign(fake, { url: `http://127.0.0.1:${server.port}/hook`, stop: () => void server.stop(true) })
}
