import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { isInternal, openApiPath } from '../../src/server/openapi'
import { inProcessGateway } from '../helpers/in-process'

// Generated requests against every route of the real app: never a 500, every error in the envelope, the
// gateway keeps serving, memory stays flat.
const TOKEN = 'fuzz-token-0123456789abcdef'
let setup: Awaited<ReturnType<typeof inProcessGateway>>
beforeAll(async () => {
  setup = await inProcessGateway(TOKEN)
})
afterAll(async () => {
  await setup.stop()
})

const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '%', '%%', '..', '../..', '😀', '\uD800', 'a'.repeat(5000), '{"a":1}', 'null', '-1', '1e309', '__proto__', 'constructor'),
)
const deep = fc.integer({ min: 50, max: 3000 }).map((n) => '['.repeat(n) + ']'.repeat(n))
const duplicateKeys = fc.tuple(fc.string(), fc.jsonValue(), fc.jsonValue()).map(([k, a, b]) => `{${JSON.stringify(k)}:${JSON.stringify(a)},${JSON.stringify(k)}:${JSON.stringify(b)}}`)
const bodyText = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
  fc.dictionary(fc.constantFrom('message', 'session', 'stream', 'channel', 'chat_id', 'content', 'timeout_ms', 'schedule', 'job_id', 'enabled', 'mode', 'model', 'messages', 'event', 'data'), fc.jsonValue({ maxDepth: 3 })).map((v) => JSON.stringify(v)),
  deep,
  duplicateKeys,
  nasty,
)
const body = fc.oneof(bodyText.map((t) => new TextEncoder().encode(t)), fc.uint8Array({ maxLength: 300 }) /* invalid UTF-8 and NUL bytes */)
const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', '', 'application/x-www-form-urlencoded', 'application/json\u0000')
const rawQuery = fc.array(fc.constantFrom('limit=%', 'q=%zz', 'since=%E0%A4', 'lines=%00', '%=%', '&&', '=', 'level'), { maxLength: 2 })
const query = fc.array(fc.tuple(fc.constantFrom('limit', 'offset', 'channel', 'lines', 'level', 'since', 'q', 'x'), nasty), { maxLength: 4 })

describe('fuzzing every route', () => {
  test('generated bodies, headers, query strings and path segments never produce a 500', async () => {
    const app = setup.gateway.app!
    const routes = app.routes.filter((r) => !isInternal(r.path))
    expect(routes.length).toBeGreaterThan(18)
    let requests = 0
    const round = async (seed: number) => {
    for (const route of routes) {
      await fc.assert(
        fc.asyncProperty(fc.array(nasty, { minLength: 2, maxLength: 2 }), query, rawQuery, body, contentType, fc.boolean(), async (segments, params, raw, payload, type, withType) => {
          let index = 0
          // Lone surrogates cannot be percent-encoded; malformed escapes are sent raw instead.
          const encode = (value: string) => encodeURIComponent(value.toWellFormed())
          const path = openApiPath(route.path).replace(/\{\w+\}/g, () => encode(segments[index++] ?? 'x'))
          const search = [...params.map(([k, v]) => `${encode(k)}=${encode(v)}`), ...raw].join('&')
          const hasBody = route.method !== 'GET'
          const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }
          if (hasBody && withType) headers['content-type'] = type.replace('\u0000', '')
          const response = await app.handle(new Request(`http://localhost${path}${search ? `?${search}` : ''}`, { method: route.method, headers, ...(hasBody ? { body: payload } : {}) }))
          requests++
          expect(response.status).not.toBe(500)
          expect(response.status).toBeLessThan(600)
          // A live stream (the log stream) does not end by itself: its first bytes, then the client goes away.
          const live = response.status < 400 && response.headers.get('content-type')?.startsWith('text/event-stream') && route.method === 'GET'
          let text = ''
          if (live) {
            const reader = response.body!.getReader()
            await reader.read()
            await reader.cancel()
          } else text = await response.text()
          if (response.status >= 400) {
            const parsed = JSON.parse(text)
            expect(Object.keys(parsed)).toEqual(['error'])
            expect(typeof parsed.error.code).toBe('string')
            expect(parsed.error.message.length).toBeGreaterThan(0)
          }
        }),
        { numRuns: 150, seed },
      )
    }
    }
    // Two rounds: the first warms up (JIT, caches, SQLite pages); the second must not keep what it allocates.
    const heap = async () => {
      await Bun.sleep(200) // let after-response hooks and background work (turns, deliveries) finish
      setup.world.llm.calls.length = 0
      setup.world.telegram.sent.length = 0
      setup.world.telegram.calls.length = 0
      setup.world.receiver.received.length = 0
      Bun.gc(true)
      return process.memoryUsage().heapUsed
    }
    await round(20261129)
    const afterFirst = await heap()
    await round(20261130)
    const afterSecond = await heap()
    expect(requests).toBeGreaterThan(5000)
    // Still serving, and the second round's thousands of requests left the heap where the first left it.
    expect((await app.handle(new Request('http://localhost/health'))).status).toBe(200)
    console.log(`fuzz: ${requests} requests; heap after round 1 ${(afterFirst / 2 ** 20).toFixed(1)} MiB, after round 2 ${(afterSecond / 2 ** 20).toFixed(1)} MiB`)
    expect(afterSecond - afterFirst).toBeLessThan(24 * 1024 * 1024)
  }, 240_000)
})
