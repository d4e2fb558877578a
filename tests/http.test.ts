import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { Elysia } from 'elysia'
import { z } from 'zod'
import { AppError } from '../src/errors'
import { makeApp, request } from './helpers/app'
import { json } from './helpers/http'

/** The real app plus routes that exercise the shared body parser, validation and error handling. */
function appWithProbeRoutes(overrides: Parameters<typeof makeApp>[0] = {}) {
  return makeApp({
    testPlugin: () =>
      new Elysia({ name: 'probe' })
        .post('/api/probe', ({ body }) => ({ status: 'ok', got: body }), {
          body: z.strictObject({ content: z.string().min(1, 'must be a non-empty string'), count: z.int().min(0).optional() }),
        })
        .post('/api/probe/empty', ({ body }) => ({ status: 'ok', body }))
        .get('/api/probe/boom', () => {
          throw new Error('database password is hunter2')
        })
        .get('/api/probe/app-error', () => {
          throw new AppError('SESSION_NOT_FOUND', 'no session "x"')
        }),
    ...overrides,
  })
}

function expectEnvelope(body: any, code: string) {
  expect(Object.keys(body)).toEqual(['error'])
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message'])
  expect(body.error.code).toBe(code)
  expect(typeof body.error.message).toBe('string')
  expect(body.error.message.length).toBeGreaterThan(0)
}

describe('/health', () => {
  test('healthy, whole-second uptime and the version; no auth needed even with a token', async () => {
    const { app } = makeApp({ token: () => 'a-configured-token', peerAddress: () => '203.0.113.9' })
    const response = await app.handle(request('/health', { host: 'example.com' }))
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body).toEqual({ status: 'healthy', uptime: 3, version: '9.9.9' })
  })

  test('503 draining while stopping, and every other route answers UNAVAILABLE', async () => {
    const { app } = makeApp({ isDraining: () => true })
    const health = await app.handle(request('/health'))
    expect(health.status).toBe(503)
    expect((await json(health)).status).toBe('draining')
    const other = await app.handle(request('/api/status'))
    expect(other.status).toBe(503)
    expectEnvelope(await json(other), 'UNAVAILABLE')
  })
})

describe('error envelope', () => {
  test('unknown route → 404 NOT_FOUND naming the route', async () => {
    const { app } = makeApp()
    const response = await app.handle(request('/nope'))
    expect(response.status).toBe(404)
    const body = await json(response)
    expectEnvelope(body, 'NOT_FOUND')
    expect(body.error.message).toContain('GET /nope')
  })

  test('malformed JSON → 400 INVALID_REQUEST', async () => {
    const { app } = appWithProbeRoutes()
    const response = await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"content": ' }))
    expect(response.status).toBe(400)
    const body = await json(response)
    expectEnvelope(body, 'INVALID_REQUEST')
    expect(body.error.message).toContain('body: is not valid JSON')
  })

  test('wrong content type → 400 naming the header', async () => {
    const { app } = appWithProbeRoutes()
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const response = await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': type }, body: 'content=hi' }))
      expect(response.status).toBe(400)
      const body = await json(response)
      expectEnvelope(body, 'INVALID_REQUEST')
      expect(body.error.message).toContain('Content-Type must be application/json')
    }
  })

  test('failed validation names the field', async () => {
    const { app } = appWithProbeRoutes()
    const send = (payload: string) => app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload }))
    const cases: [string, string][] = [
      ['{"content": ""}', 'content: must be a non-empty string'],
      ['{}', 'content: is required'],
      ['{"content": 5}', 'content: must be a string'],
      ['{"content": "x", "count": -1}', 'count:'],
      ['{"content": "x", "extra": 1}', 'extra: unknown field'],
      ['[1, 2]', 'body: must be an object'],
    ]
    for (const [payload, message] of cases) {
      const response = await send(payload)
      expect(response.status).toBe(400)
      const body = await json(response)
      expectEnvelope(body, 'INVALID_REQUEST')
      expect(body.error.message).toContain(message)
    }
  })

  test('an empty body stands for {}: required fields are named, whatever the content type', async () => {
    const { app } = appWithProbeRoutes()
    for (const headers of [{ 'content-type': 'application/json' }, {} as Record<string, string>]) {
      const response = await app.handle(request('/api/probe', { method: 'POST', headers }))
      expect(response.status).toBe(400)
      expect((await json(response)).error.message).toBe('content: is required')
    }
  })

  test('a body-less POST to a route without a body schema is accepted', async () => {
    const { app } = appWithProbeRoutes()
    const response = await app.handle(request('/api/probe/empty', { method: 'POST' }))
    expect(response.status).toBe(200)
    expect(await json(response)).toEqual({ status: 'ok', body: {} })
  })

  test('a body nested deeper than 64 levels → 400 before it is parsed', async () => {
    const { app } = appWithProbeRoutes({ maxBodyBytes: 1 << 20 })
    const deep = '['.repeat(65) + ']'.repeat(65)
    const response = await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep }))
    expect(response.status).toBe(400)
    expect((await json(response)).error.message).toBe('body: is nested more than 64 levels deep')
    const withBrackets = JSON.stringify({ content: '['.repeat(500) })
    expect((await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: withBrackets }))).status).toBe(200)
  })

  test('invalid UTF-8 → 400', async () => {
    const { app } = appWithProbeRoutes()
    const response = await app.handle(
      request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }),
    )
    expect(response.status).toBe(400)
    expect((await json(response)).error.message).toContain('UTF-8')
  })

  test('a body over maxBodyBytes → 413, by Content-Length and when streamed without one', async () => {
    const { app } = appWithProbeRoutes({ maxBodyBytes: 1024 })
    const big = JSON.stringify({ content: 'x'.repeat(2000) })
    const declared = await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big }))
    expect(declared.status).toBe(413)
    expectEnvelope(await json(declared), 'PAYLOAD_TOO_LARGE')
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode(big.slice(i * 500, (i + 1) * 500)))
        controller.enqueue(new TextEncoder().encode(big.slice(2000)))
        controller.close()
      },
    })
    const streamed = await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream }))
    expect(streamed.status).toBe(413)
    expectEnvelope(await json(streamed), 'PAYLOAD_TOO_LARGE')
  })

  test('a body within the limit is accepted', async () => {
    const { app } = appWithProbeRoutes({ maxBodyBytes: 1024 })
    const response = await app.handle(request('/api/probe', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"content":"hi","count":2}' }))
    expect(response.status).toBe(200)
    expect(await json(response)).toEqual({ status: 'ok', got: { content: 'hi', count: 2 } })
  })

  test('an AppError keeps its code and status', async () => {
    const { app } = appWithProbeRoutes()
    const response = await app.handle(request('/api/probe/app-error'))
    expect(response.status).toBe(404)
    expectEnvelope(await json(response), 'SESSION_NOT_FOUND')
  })

  test('an unexpected error → 500 with a generic message; the details go to the log only', async () => {
    const { app, logger, logFile } = appWithProbeRoutes()
    const response = await app.handle(request('/api/probe/boom'))
    expect(response.status).toBe(500)
    const body = await json(response)
    expectEnvelope(body, 'INTERNAL_ERROR')
    expect(JSON.stringify(body)).not.toContain('hunter2')
    logger.file!.flush()
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    const logged = lines.find((l) => l.msg === 'unexpected error')
    expect(logged.err.message).toContain('hunter2')
    expect(logged.requestId).toBe(response.headers.get('x-request-id'))
  })
})

describe('request ids and the request log', () => {
  test('every response carries X-Request-Id, errors included, and the log line has it', async () => {
    const { app, logger, logFile } = makeApp()
    const ok = await app.handle(request('/health'))
    const missing = await app.handle(request('/missing'))
    const okId = ok.headers.get('x-request-id')
    const missingId = missing.headers.get('x-request-id')
    expect(okId).toMatch(/^[0-9a-f-]{36}$/)
    expect(missingId).toMatch(/^[0-9a-f-]{36}$/)
    expect(okId).not.toBe(missingId)
    await Bun.sleep(0) // onAfterResponse runs after the response is returned
    await new Promise((resolve) => setImmediate(resolve))
    logger.file!.flush()
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    const line = lines.find((l) => l.requestId === missingId)
    expect(line).toMatchObject({ level: 'info', tag: 'http', method: 'GET', path: '/missing', status: 404 })
    expect(typeof line.ms).toBe('number')
    expect(typeof line.ts).toBe('string')
  })

  test('a plain client request id is kept; an odd one is replaced', async () => {
    const { app } = makeApp()
    expect((await app.handle(request('/health', { headers: { 'x-request-id': 'trace-42' } }))).headers.get('x-request-id')).toBe('trace-42')
    expect((await app.handle(request('/health', { headers: { 'x-request-id': 'bad id\twith spaces' } }))).headers.get('x-request-id')).not.toContain(' ')
  })
})
