import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { makeWorld, type World } from './helpers/channels'
import type { RunningGateway } from './helpers/gateway'
import { concrete, enumerateRoutes, type Route } from './helpers/routes'

/**
 * A wrong method on a path the gateway serves is 405 METHOD_NOT_ALLOWED with an Allow header that lists
 * exactly the methods the path is served for — for every route of a fully wired gateway (enumerated from the
 * app itself, so a new route is covered without a new test), over HTTP against the real process.
 */
const TOKEN = 'methods-test-token-0123456789'
const ORIGIN = 'https://app.example'
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

const auth = { authorization: `Bearer ${TOKEN}` }

let world: World
let gateway: RunningGateway
let routes: Route[]

beforeAll(async () => {
  world = await makeWorld()
  routes = await enumerateRoutes(world, TOKEN)
  world.config.gateway.auth = { token: TOKEN }
  world.config.gateway.cors = { origins: [ORIGIN] }
  await Bun.write(join(world.home, '.xopcbot', 'config.json'), JSON.stringify(world.config))
  gateway = await world.start()
})

afterAll(async () => {
  if (gateway?.proc.exitCode === null) await gateway.stop()
  world?.stop()
})

/** Sends one request with the token; a stream is cancelled once its head is in. */
async function send(method: string, path: string, headers: Record<string, string> = auth) {
  const hasBody = method !== 'GET' && method !== 'HEAD'
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers: { ...headers, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
    ...(hasBody ? { body: '{}' } : {}),
    signal: AbortSignal.timeout(10_000),
  })
  const streaming = response.headers.get('content-type')?.startsWith('text/event-stream')
  if (streaming) await response.body?.cancel()
  const text = streaming ? '' : await response.text()
  return { status: response.status, headers: response.headers, text, error: text.startsWith('{') ? JSON.parse(text).error : undefined }
}

describe('405 METHOD_NOT_ALLOWED', () => {
  test('every route × every method: a method the path is not served for is a 405 whose Allow lists exactly those it is', async () => {
    expect(routes.length).toBeGreaterThan(25)
    const failures: string[] = []
    let refused = 0
    for (const path of [...new Set(routes.map((r) => concrete(r.path)))]) {
      const answers = new Map<string, Awaited<ReturnType<typeof send>>>()
      for (const method of METHODS) answers.set(method, await send(method, path))
      const served = METHODS.filter((m) => answers.get(m)!.status !== 405)
      const ownMethods = routes.filter((r) => concrete(r.path) === path).map((r) => r.method)
      for (const own of ownMethods) if (!served.includes(own as never)) failures.push(`${own} ${path}: its own route answered 405`)
      for (const method of METHODS) {
        const answer = answers.get(method)!
        if (answer.status === 405) {
          refused++
          if (!answer.headers.get('x-request-id')) failures.push(`${method} ${path}: no X-Request-Id`)
          const allow = (answer.headers.get('allow') ?? '').split(', ')
          if ([...allow].sort().join() !== [...served].sort().join()) failures.push(`${method} ${path}: Allow "${allow.join(', ')}", but served for ${served.join(', ')}`)
          // The answer to HEAD has no body.
          if (method === 'HEAD') continue
          if (answer.error?.code !== 'METHOD_NOT_ALLOWED') failures.push(`${method} ${path}: 405 without the envelope: ${answer.text.slice(0, 200)}`)
          for (const m of allow) if (!answer.error?.message.includes(m)) failures.push(`${method} ${path}: the message does not name ${m}: ${answer.error?.message}`)
        } else if (method !== 'HEAD' && answer.error?.code === 'NOT_FOUND' && answer.error.message.startsWith('no route')) {
          failures.push(`${method} ${path}: served per Allow, but the router found nothing`)
        }
      }
      // HEAD is served wherever GET is, and answered without a body.
      if (served.includes('GET')) {
        const head = answers.get('HEAD')!
        if (head.status !== answers.get('GET')!.status) failures.push(`HEAD ${path}: ${head.status}, GET: ${answers.get('GET')!.status}`)
        if (head.text !== '') failures.push(`HEAD ${path}: a body`)
      }
    }
    expect(failures).toEqual([])
    // Every path refuses some method: there is no route for PUT or PATCH.
    expect(refused).toBeGreaterThan(routes.length)
  }, 120_000)

  test('PUT /api/sessions/x → 405 with Allow: GET, HEAD, DELETE', async () => {
    const answer = await send('PUT', '/api/sessions/x')
    expect(answer.status).toBe(405)
    expect(answer.headers.get('allow')).toBe('GET, HEAD, DELETE')
    expect(answer.error).toEqual({ code: 'METHOD_NOT_ALLOWED', message: 'PUT is not allowed on /api/sessions/x; use GET, HEAD or DELETE' })
  })

  test('a path served by a fixed route and a parameter route takes the methods of both', async () => {
    // GET /api/message/:id and POST /api/message/sync; GET /api/cron/preview and DELETE /api/cron/:id.
    expect((await send('PUT', '/api/message/sync')).headers.get('allow')).toBe('GET, HEAD, POST')
    expect((await send('POST', '/api/cron/preview')).headers.get('allow')).toBe('GET, HEAD, DELETE')
    // A plugin's root route, with or without its final slash.
    expect((await send('DELETE', '/api/sessions')).headers.get('allow')).toBe('GET, HEAD')
    expect((await send('DELETE', '/api/sessions/')).headers.get('allow')).toBe('GET, HEAD')
  })

  test('public paths answer 405 without the token', async () => {
    const health = await send('POST', '/health', {})
    expect(health.status).toBe(405)
    expect(health.headers.get('allow')).toBe('GET, HEAD')
    expect((await send('DELETE', '/openapi.json', {})).headers.get('allow')).toBe('GET, HEAD')
  })

  test('auth still comes first: without the token a protected path is 401, with no Allow header', async () => {
    const answer = await send('PUT', '/api/sessions/x', {})
    expect(answer.status).toBe(401)
    expect(answer.error.code).toBe('UNAUTHORIZED')
    expect(answer.headers.get('allow')).toBeNull()
  })

  test('unknown paths stay 404 NOT_FOUND, whatever the method', async () => {
    for (const [method, path] of [
      ['GET', '/api/nope'],
      ['PUT', '/api/nope'],
      ['GET', '/api/sessions/x/y'],
      ['POST', '/nope'],
    ] as const) {
      const answer = await send(method, path)
      expect({ path, status: answer.status, code: answer.error?.code, allow: answer.headers.get('allow') }).toEqual({ path, status: 404, code: 'NOT_FOUND', allow: null })
    }
  })

  test('a CORS preflight still works; a plain OPTIONS is a 405 like any other method', async () => {
    const preflight = await fetch(`${gateway.url}/api/sessions/x`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'DELETE' } })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN)
    expect(preflight.headers.get('access-control-allow-methods')).toContain('DELETE')
    const plain = await send('OPTIONS', '/api/sessions/x')
    expect(plain.status).toBe(405)
    expect(plain.headers.get('allow')).toBe('GET, HEAD, DELETE')
    // A cross-origin client can read the 405 (CORS headers on errors too).
    const crossOrigin = await send('PUT', '/api/sessions/x', { ...auth, origin: ORIGIN })
    expect(crossOrigin.status).toBe(405)
    expect(crossOrigin.headers.get('access-control-allow-origin')).toBe(ORIGIN)
    expect(crossOrigin.headers.get('access-control-expose-headers')).toContain('Allow')
  })

  test('HEAD of the live log stream is answered at once, without a body (it used to wait for the stream to end)', async () => {
    const started = performance.now()
    const response = await fetch(`${gateway.url}/api/logs/stream`, { method: 'HEAD', headers: auth, signal: AbortSignal.timeout(5000) })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toContain('text/event-stream')
    expect(await response.text()).toBe('')
    expect(performance.now() - started).toBeLessThan(2000)
    // And the gateway is still serving.
    expect((await fetch(`${gateway.url}/health`)).status).toBe(200)
  })
})
