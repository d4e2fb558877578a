import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { gunzipSync } from 'node:zlib'
import { makeWorld, type World } from './helpers/channels'
import { writeConfig, type RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

/** What the Control UI stands on: the page and its assets, the message list and the live log stream. */

const TOKEN = 'ui-api-token-0123456789abcdef'
const auth = { authorization: `Bearer ${TOKEN}` }

let world: World
let gateway: RunningGateway

beforeAll(async () => {
  world = await makeWorld()
  world.config.gateway.auth = { token: TOKEN }
  writeConfig(world.home, world.config)
  gateway = await world.start()
})

afterAll(async () => {
  if (gateway.proc.exitCode === null) await gateway.stop()
  world.stop()
})

/** Reads an SSE response's `log` events as they come; `close` ends the reading. */
function logEvents(response: Response) {
  const events: Record<string, unknown>[] = []
  let ended = false
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^event: log\ndata: (.*)$/s.exec(block)
        if (data) events.push(JSON.parse(data[1]!))
      }
    }
    ended = true
  })().catch(() => {
    ended = true
  })
  return { events, ended: () => ended, close: () => reader.cancel().catch(() => {}), reading }
}

describe('the Control UI page', () => {
  test('is public, with a strict CSP and no framing; its data is not', async () => {
    const page = await fetch(`${gateway.url}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html;charset=utf-8')
    const csp = page.headers.get('content-security-policy')!
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("connect-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(page.headers.get('x-frame-options')).toBe('DENY')
    expect(page.headers.get('referrer-policy')).toBe('no-referrer')
    expect(page.headers.get('x-request-id')).toBeTruthy()
    const html = await page.text()
    // No inline script: every script is a file of the bundle, served under /ui/.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1]!)
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true)
    for (const asset of assets) {
      const response = await fetch(`${gateway.url}${asset}`)
      expect(response.status, asset).toBe(200)
      expect(response.headers.get('content-security-policy'), asset).toBe(csp)
      expect(response.headers.get('cache-control'), asset).toContain('immutable')
    }
    expect((await fetch(`${gateway.url}/api/status`)).status).toBe(401)
  })

  test('answers a known ETag with 304 and compresses for clients that accept gzip', async () => {
    const html = await (await fetch(`${gateway.url}/`)).text()
    const script = /src="(\/ui\/[^"]+\.js)"/.exec(html)![1]!
    const plain = await fetch(`${gateway.url}${script}`, { headers: { 'accept-encoding': 'identity' } })
    const body = new Uint8Array(await plain.arrayBuffer())
    const etag = plain.headers.get('etag')!
    expect(plain.headers.get('content-encoding')).toBeNull()
    const again = await fetch(`${gateway.url}${script}`, { headers: { 'if-none-match': etag } })
    expect(again.status).toBe(304)
    // Bun's fetch would decompress by itself: ask for the raw bytes.
    const zipped = await fetch(`${gateway.url}${script}`, { headers: { 'accept-encoding': 'gzip' }, decompress: false } as RequestInit)
    expect(zipped.headers.get('content-encoding')).toBe('gzip')
    const raw = new Uint8Array(await zipped.arrayBuffer())
    expect(raw.byteLength).toBeLessThan(body.byteLength)
    expect(Buffer.from(gunzipSync(raw)).equals(Buffer.from(body))).toBe(true)
  })

  test('an unknown asset is a 404 in the error envelope', async () => {
    const response = await fetch(`${gateway.url}/ui/nothing-here.js`)
    expect(response.status).toBe(404)
    expect(((await response.json()) as any).error.code).toBe('NOT_FOUND')
  })
})

describe('GET /api/messages', () => {
  test('lists recent messages newest first, with content and state, filtered by state and channel', async () => {
    const ids: string[] = []
    for (const content of ['first message', 'second message']) {
      const response = await fetch(`${gateway.url}/api/message`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'myapp', chat_id: 'u1', content }) })
      expect(response.status).toBe(202)
      ids.push(((await response.json()) as { message_id: string }).message_id)
    }
    const list = async (query = '') => ((await (await fetch(`${gateway.url}/api/messages${query}`, { headers: auth })).json()) as any).messages as { id: string; state: string; content: string; reply?: string; channel: string }[]
    await waitFor(async () => (await list('?state=delivered')).filter((m) => ids.includes(m.id)).length === 2, { what: 'both delivered' })
    const messages = await list()
    expect(messages.slice(0, 2).map((m) => m.id)).toEqual([ids[1]!, ids[0]!])
    expect(messages[0]).toMatchObject({ channel: 'myapp', content: 'second message', state: 'delivered' })
    expect(typeof messages[0]!.reply).toBe('string')
    expect(await list('?state=failed')).toEqual([])
    expect(await list('?channel=telegram')).toEqual([])
    expect((await list('?limit=1')).map((m) => m.id)).toEqual([ids[1]!])
    expect((await list('?limit=1&offset=1')).map((m) => m.id)).toEqual([ids[0]!])
  })

  test('bad filters name the field; the list needs the token', async () => {
    const bad = await fetch(`${gateway.url}/api/messages?state=lost`, { headers: auth })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as any).error.message).toStartWith('query.state: must be one of')
    const badLimit = await fetch(`${gateway.url}/api/messages?limit=0`, { headers: auth })
    expect(((await badLimit.json()) as any).error.message).toStartWith('query.limit:')
    expect((await fetch(`${gateway.url}/api/messages`)).status).toBe(401)
  })
})

describe('GET /api/cron/preview', () => {
  test('says a schedule in words with its time zone and lists the next runs croner will fire', async () => {
    const response = await fetch(`${gateway.url}/api/cron/preview?schedule=${encodeURIComponent('0 9 * * 1')}&timezone=Europe/Berlin`, { headers: auth })
    expect(response.status).toBe(200)
    const preview = (await response.json()) as { description: string; next_runs: string[]; timezone: string }
    expect(preview.description).toBe('At 09:00, only on Monday (Europe/Berlin)')
    expect(preview.timezone).toBe('Europe/Berlin')
    expect(preview.next_runs).toHaveLength(5)
    const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'long', hour: '2-digit', minute: '2-digit' })
    for (const run of preview.next_runs) expect(berlin.format(new Date(run))).toBe('Monday 09:00')
    expect(preview.next_runs).toEqual([...preview.next_runs].sort())
    expect(Date.parse(preview.next_runs[0]!)).toBeGreaterThan(Date.now())
  })

  test('without a time zone the configured one is used; one-shots and nicknames read naturally', async () => {
    const preview = async (schedule: string) => (await (await fetch(`${gateway.url}/api/cron/preview?schedule=${encodeURIComponent(schedule)}`, { headers: auth })).json()) as any
    expect((await preview('@daily')).description).toBe('At 00:00 (UTC)')
    expect((await preview('@hourly')).description).toBe('Every hour (UTC)')
    expect((await preview('0 30 8 * * 1-5')).description).toBe('At 08:30, Monday through Friday (UTC)')
    const once = await preview('2099-01-02T03:04:00Z')
    expect(once.description).toBe('Once, at 2099-01-02 03:04:00Z')
    expect(once.next_runs).toEqual(['2099-01-02T03:04:00.000Z'])
  })

  test('a schedule a job could not have is a 400 naming the field and the reason', async () => {
    const problem = async (query: string) => {
      const response = await fetch(`${gateway.url}/api/cron/preview?${query}`, { headers: auth })
      expect(response.status).toBe(400)
      return ((await response.json()) as any).error.message as string
    }
    expect(await problem('schedule=0+0+31+2+*')).toStartWith('query.schedule: never fires')
    expect(await problem('schedule=every+day')).toStartWith('query.schedule: must be a cron expression with 5 or 6 fields')
    expect(await problem('schedule=0+9+*+*+*&timezone=Mars/Olympus')).toStartWith('query.timezone: unknown time zone')
    expect(await problem('')).toStartWith('query.schedule:')
  })
})

describe('GET /api/logs/stream', () => {
  test('needs the token, always', async () => {
    const response = await fetch(`${gateway.url}/api/logs/stream`)
    expect(response.status).toBe(401)
    expect(((await response.json()) as any).error.code).toBe('UNAUTHORIZED')
  })

  test('sends the last lines, then new lines as they are written, filtered by level and text', async () => {
    const marker = `marker-${crypto.randomUUID().slice(0, 8)}`
    const response = await fetch(`${gateway.url}/api/logs/stream?lines=3`, { headers: auth })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('text/event-stream')
    const all = logEvents(response)
    const filtered = logEvents(await fetch(`${gateway.url}/api/logs/stream?lines=0&q=${marker}`, { headers: auth }))
    const warnings = logEvents(await fetch(`${gateway.url}/api/logs/stream?lines=0&level=warn`, { headers: auth }))
    try {
      await waitFor(() => all.events.length >= 3, { what: 'the backlog' })
      // A request whose log line carries the marker (a 404 is logged at info).
      expect((await fetch(`${gateway.url}/api/sessions/${marker}`, { headers: auth })).status).toBe(404)
      await waitFor(() => all.events.some((e) => String(e.path).includes(marker)), { what: 'the new line in the full stream' })
      await waitFor(() => filtered.events.length >= 1, { what: 'the new line in the filtered stream' })
      expect(filtered.events.every((e) => JSON.stringify(e).includes(marker))).toBe(true)
      expect(all.events.length).toBeGreaterThan(filtered.events.length)
      expect(warnings.events.every((e) => e.level === 'warn' || e.level === 'error' || e.level === 'fatal')).toBe(true)
      expect(warnings.events.some((e) => JSON.stringify(e).includes(marker))).toBe(false)
    } finally {
      await Promise.all([all.close(), filtered.close(), warnings.close()])
    }
  })

  test('a bad filter names the field', async () => {
    const response = await fetch(`${gateway.url}/api/logs/stream?level=loud`, { headers: auth })
    expect(response.status).toBe(400)
    expect(((await response.json()) as any).error.message).toStartWith('query.level: must be one of')
  })

  test('open streams end when the gateway stops, without holding the stop', async () => {
    const stream = logEvents(await fetch(`${gateway.url}/api/logs/stream?lines=0`, { headers: auth }))
    const started = Date.now()
    expect(await gateway.stop()).toBe(0)
    await waitFor(() => stream.ended(), { what: 'the stream to end' })
    // Under the server's 2 s forced-close fallback: the stream was ended, not cut.
    expect(Date.now() - started).toBeLessThan(2000)
    expect(gateway.output()).not.toContain('drain budget exhausted')
  })
})
