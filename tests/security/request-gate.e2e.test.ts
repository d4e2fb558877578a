import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeWorld, type World } from '../helpers/channels'
import { runCli, type RunningGateway } from '../helpers/gateway'
import { rawExchange, type RawResponse } from '../helpers/raw-http'
import { concrete, enumerateRoutes, type Route } from '../helpers/routes'
import { waitFor } from '../helpers/wait'

/**
 * Attacks at the socket: every route the app serves (enumerated from the app itself, so a new route is covered
 * without a new test) × request shapes that confuse a server about which path or host it serves, sent as exact
 * bytes over TCP — with no token, a wrong token and the right one.
 */
const TOKEN = 'socket-test-token-0123456789'

/** Public by design (SPEC §7): they answer 2xx to anyone with a well-formed request. */
const PUBLIC = new Set(['GET /health', 'GET /openapi.json', 'GET /', 'GET /ui/:file'])

type Shape = { name: string; wellFormed: boolean; bytes: (method: string, path: string, port: number, auth: string) => string }

const body = '{}'
const tail = (method: string, auth: string) =>
  `${auth}${method === 'GET' || method === 'HEAD' ? '' : `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`}Connection: close\r\n\r\n${method === 'GET' || method === 'HEAD' ? '' : body}`

const SHAPES: Shape[] = [
  { name: 'Host with userinfo', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: x@y\r\n${tail(m, a)}` },
  { name: 'Host with a space', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: a b\r\n${tail(m, a)}` },
  { name: 'empty Host', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: \r\n${tail(m, a)}` },
  { name: 'no Host, HTTP/1.1', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\n${tail(m, a)}` },
  { name: 'no Host, HTTP/1.0', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.0\r\n${tail(m, a)}` },
  { name: 'Host [zz]', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: [zz]\r\n${tail(m, a)}` },
  { name: 'Host with a path', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: localhost/x\r\n${tail(m, a)}` },
  { name: 'Host with a bad port', wellFormed: false, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: localhost:99999\r\n${tail(m, a)}` },
  { name: 'two Host headers', wellFormed: false, bytes: (m, p, port, a) => `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nHost: evil.example\r\n${tail(m, a)}` },
  { name: 'control character in the target', wellFormed: false, bytes: (m, p, port, a) => `${m} ${p}\x01 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'obs-fold header', wellFormed: false, bytes: (m, p, port, a) => `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-A: b\r\n c\r\n${tail(m, a)}` },
  {
    name: 'Content-Length with Transfer-Encoding (smuggling)',
    wellFormed: false,
    bytes: (m, p, port, a) =>
      `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${a}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/logs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
  },
  { name: 'well-formed', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'short Host (path offset)', wellFormed: true, bytes: (m, p, _port, a) => `${m} ${p} HTTP/1.1\r\nHost: a\r\n${tail(m, a)}` },
  { name: 'short Host, public prefix', wellFormed: true, bytes: (m, p, _port, a) => `${m} /_control${p} HTTP/1.1\r\nHost: a\r\n${tail(m, a)}` },
  { name: 'short Host, health prefix', wellFormed: true, bytes: (m, p, _port, a) => `${m} /health${p} HTTP/1.1\r\nHost: ab\r\n${tail(m, a)}` },
  { name: 'absolute-form target', wellFormed: true, bytes: (m, p, port, a) => `${m} http://127.0.0.1:${port}${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'absolute-form, other host', wellFormed: true, bytes: (m, p, port, a) => `${m} http://evil.example${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'dot segments', wellFormed: true, bytes: (m, p, port, a) => `${m} /health/..${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'encoded dot segments', wellFormed: true, bytes: (m, p, port, a) => `${m} /api/webhook/%2e%2e/..${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'percent-encoded letter', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'encoded slash', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p.replace(/(?<=.)\/(?=[^/]*$)/, '%2f')} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'doubled slashes', wellFormed: true, bytes: (m, p, port, a) => `${m} /${p.replaceAll('/', '//')} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'upper case', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p.toUpperCase()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'trailing slash', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'backslash dot segments', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p.replace(/[^/]*$/, '..\\..\\health')} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'encoded backslash', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p.replace(/[^/]*$/, '..%5c..%5chealth')} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'fragment', wellFormed: true, bytes: (m, p, port, a) => `${m} ${p}#/../../health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
  { name: 'webhook prefix, encoded', wellFormed: true, bytes: (m, p, port, a) => `${m} /api/webhook/x%2f..%2f..${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tail(m, a)}` },
]

// Wrong tokens are sent from an address of their own: after ten of them the auth limiter answers every request
// of that address 429 before auth looks at it, and the requests without a token must meet auth itself.
const CREDENTIALS = [
  { name: 'no token', header: '', from: undefined },
  { name: 'a wrong token', header: 'Authorization: Bearer not-the-token-at-all\r\n', from: '127.0.0.3' },
  { name: 'the token', header: `Authorization: Bearer ${TOKEN}\r\n`, from: undefined },
] as const

/** What may answer a request without the right token before any handler runs: the rate limit only for wrong tokens. */
const refusals = (credential: (typeof CREDENTIALS)[number]) => ['UNAUTHORIZED', 'NOT_FOUND', 'METHOD_NOT_ALLOWED', ...(credential.name === 'a wrong token' ? ['RATE_LIMITED'] : [])]

/** The body of /health or /openapi.json. */
function answeredByPublicRoute(body: string): boolean {
  // The Control UI's page (a spelling that resolves to "/"); its data needs the token like any /api call.
  if (body.startsWith('<!doctype html>')) return true
  try {
    const parsed = JSON.parse(body)
    return parsed.status === 'healthy' || typeof parsed.openapi === 'string'
  } catch {
    return false
  }
}

/** What an answer from the application looks like: the JSON envelope, a request id. */
function expectEnvelope(response: RawResponse, context: string) {
  expect(response.headers['x-request-id'], `${context}: X-Request-Id`).toBeTruthy()
  expect(response.headers['content-type'], `${context}: content type`).toContain('application/json')
  const parsed = JSON.parse(response.body)
  expect(typeof parsed.error?.code, `${context}: error code in ${response.body}`).toBe('string')
  expect(typeof parsed.error?.message, `${context}: error message`).toBe('string')
}

let world: World
let gateway: RunningGateway
let routes: Route[]

beforeAll(async () => {
  world = await makeWorld()
  routes = await enumerateRoutes(world, TOKEN)
  world.config.gateway.auth = { token: TOKEN }
  world.config.gateway.shutdownTimeoutMs = 4000
  await Bun.write(join(world.home, '.xopcbot', 'config.json'), JSON.stringify(world.config))
  gateway = await world.start()
})

afterAll(async () => {
  if (gateway.proc.exitCode === null) gateway.proc.kill('SIGKILL')
  world.stop()
})

describe('the request gate, at the socket', () => {
  test('the app serves the routes this suite attacks', () => {
    const names = routes.map((r) => `${r.method} ${r.path}`)
    // A sample of what must be there; the suite below covers whatever else is.
    for (const route of ['GET /', 'GET /metrics', 'POST /api/config/reload', 'GET /api/logs', 'GET /api/logs/stream', 'GET /api/messages', 'POST /api/agent', 'POST /api/cron/create', 'DELETE /api/sessions/:key', 'POST /v1/chat/completions', 'POST /api/webhook/:channel', 'POST /_control/:action']) {
      expect(names).toContain(route)
    }
  })

  test('every route × every hostile shape × every credential: no 2xx without the token, never a 500, always the envelope', async () => {
    let sent = 0
    const failures: string[] = []
    for (const route of routes) {
      const path = concrete(route.path)
      for (const shape of SHAPES) {
        for (const credential of CREDENTIALS) {
          const context = `${shape.name}, ${credential.name}: ${route.method} ${path}`
          const { responses, closed } = await rawExchange(gateway.port, shape.bytes(route.method, path, gateway.port, credential.header), { expect: 2, timeoutMs: 8000, from: credential.from })
          sent++
          try {
            expect(responses.length, `${context}: one answer`).toBeGreaterThanOrEqual(1)
            // A smuggled second request must never be answered on the same connection.
            expect(responses.length, `${context}: a second answer on one connection`).toBe(1)
            const response = responses[0]!
            expect(response.status, `${context}: status`).not.toBe(500)
            const ours = response.headers['x-request-id'] !== undefined
            if (ours) {
              if (response.status >= 400) expectEnvelope(response, context)
            } else {
              // Refused by Bun's HTTP parser before JavaScript saw it: a bare 4xx (or 505) and the connection closed.
              expect(shape.wellFormed, `${context}: a well-formed request must reach the app (got ${response.status})`).toBe(false)
              expect(response.status === 505 || (response.status >= 400 && response.status < 500), `${context}: parser refusal status ${response.status}`).toBe(true)
              expect(closed, `${context}: connection closed after a parser refusal`).toBe(true)
            }
            const isPublic = PUBLIC.has(`${route.method} ${route.path}`)
            if (!shape.wellFormed) expect(response.status, `${context}: malformed requests are refused`).toBeGreaterThanOrEqual(400)
            if (credential.name !== 'the token' && !isPublic && response.status >= 200 && response.status < 300) {
              // Only a public route may have answered: a spelling that resolves to /health is served by /health.
              expect(answeredByPublicRoute(response.body), `${context}: ${response.status} ${response.body.slice(0, 200)} without the token`).toBe(true)
            }
            if (!shape.wellFormed && ours) expect(JSON.parse(response.body).error.code, context).toBe('INVALID_REQUEST')
            if (credential.name !== 'the token' && !isPublic && ours && response.status >= 400) {
              // Without the token no protected handler may run: the answer comes from the gate, from auth (or a
              // public route's own verification), or from the router finding nothing for this method.
              const { code, message } = JSON.parse(response.body).error
              const refusedBeforeHandler = refusals(credential).includes(code) || (code === 'INVALID_REQUEST' && message.startsWith('malformed request'))
              expect(refusedBeforeHandler, `${context}: ${response.status} ${response.body.slice(0, 200)} without the token`).toBe(true)
            }
          } catch (error) {
            failures.push((error as Error).message.split('\n')[0]!)
          }
        }
      }
    }
    expect(failures).toEqual([])
    expect(sent).toBe(routes.length * SHAPES.length * CREDENTIALS.length)
    expect(sent).toBeGreaterThan(500)
  }, 240_000)

  test('every path × other methods (HEAD, OPTIONS, the ones no route takes, lower-case and unknown ones) × every hostile shape: no handler without the token; HEAD answers as GET does, without a body', async () => {
    // Methods Bun's parser knows reach the app; a lower-case or unknown one is dropped by Bun (no answer, closed).
    const KNOWN = ['HEAD', 'OPTIONS', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'PROPFIND', 'QUERY']
    const UNKNOWN = ['FOO', 'get', 'head', 'post', 'options', 'Get']
    const failures: string[] = []
    let sent = 0
    const exchange = async (method: string, path: string, shape: Shape, credential: (typeof CREDENTIALS)[number]) => {
      sent++
      return rawExchange(gateway.port, shape.bytes(method, path, gateway.port, credential.header), { expect: 2, timeoutMs: 8000, head: method === 'HEAD', from: credential.from })
    }
    for (const pattern of [...new Set(routes.map((r) => r.path))]) {
      const path = concrete(pattern)
      const isPublic = PUBLIC.has(`GET ${pattern}`)
      for (const shape of SHAPES) {
        for (const credential of CREDENTIALS) {
          // With the token only HEAD is sent: it runs GET routes, which change nothing.
          const methods = credential.name === 'the token' ? ['HEAD'] : [...KNOWN, ...UNKNOWN]
          for (const method of methods) {
            const context = `${shape.name}, ${credential.name}: ${method} ${path}`
            try {
              const { responses, closed } = await exchange(method, path, shape, credential)
              expect(responses.length, `${context}: a second answer on one connection`).toBeLessThanOrEqual(1)
              const response = responses[0]
              if (!response) {
                expect(UNKNOWN.includes(method) || !shape.wellFormed, `${context}: no answer`).toBe(true)
                expect(closed, `${context}: closed without an answer`).toBe(true)
                continue
              }
              expect(response.status, `${context}: status`).not.toBe(500)
              const ours = response.headers['x-request-id'] !== undefined
              if (!ours) {
                expect(shape.wellFormed && KNOWN.includes(method), `${context}: a well-formed request must reach the app (got ${response.status})`).toBe(false)
                continue
              }
              if (method === 'HEAD') {
                // HEAD is GET without the body: same status, same refusal, nothing after the head.
                const get = (await exchange('GET', path, shape, credential)).responses[0]
                expect(response.status, `${context}: HEAD ${response.status}, GET ${get?.status}`).toBe(get?.status ?? -1)
                expect(response.body, `${context}: a body`).toBe('')
                if (credential.name !== 'the token' && !isPublic && get!.status < 300) expect(answeredByPublicRoute(get!.body), `${context}: ${get!.status} without the token`).toBe(true)
                if (credential.name !== 'the token' && !isPublic && get!.status >= 400) {
                  const { code, message } = JSON.parse(get!.body).error
                  const refused = refusals(credential).includes(code) || (code === 'INVALID_REQUEST' && message.startsWith('malformed request'))
                  expect(refused, `${context}: GET answered ${get!.body.slice(0, 200)} without the token`).toBe(true)
                }
                continue
              }
              if (response.status >= 400) expectEnvelope(response, context)
              if (response.status < 300) {
                // No route takes the others (no CORS origin is configured here: OPTIONS is no preflight).
                expect(['GET', 'POST', 'DELETE'].includes(method), `${context}: ${response.status} ${response.body.slice(0, 200)}`).toBe(true)
                expect(isPublic || answeredByPublicRoute(response.body), `${context}: ${response.status} without the token`).toBe(true)
              }
              if (!isPublic && response.status >= 400) {
                const { code, message } = JSON.parse(response.body).error
                const refused = refusals(credential).includes(code) || (code === 'INVALID_REQUEST' && message.startsWith('malformed request'))
                expect(refused, `${context}: ${response.status} ${response.body.slice(0, 200)} without the token`).toBe(true)
              }
              // A 405 names what the path takes; without the token only a public path's methods may be told.
              if (response.status === 405) expect(response.headers.allow, `${context}: Allow`).toBeTruthy()
            } catch (error) {
              failures.push((error as Error).message.split('\n')[0]!)
            }
          }
        }
      }
    }
    expect(failures).toEqual([])
    expect(sent).toBeGreaterThan(10_000)
  }, 240_000)

  test('a Content-Length sent twice is refused before any body is read: 400, Connection: close', async () => {
    const port = Number(new URL(gateway.url).port)
    for (const [path, auth] of [
      ['/api/webhook/anything', ''],
      ['/api/agent', `Authorization: Bearer ${TOKEN}\r\n`],
    ] as const) {
      // Only the head is sent: a gateway that waited for the declared body would never answer.
      const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${auth}Content-Type: application/json\r\nContent-Length: 10000000\r\nContent-Length: 10000000\r\n\r\n{"a":`
      const { responses } = await rawExchange(port, head, { timeoutMs: 5000 })
      expect(responses[0]?.status, path).toBe(400)
      expect(JSON.parse(responses[0]!.body).error, path).toEqual({ code: 'INVALID_REQUEST', message: 'malformed request: the Content-Length header must be one whole number' })
      expect(responses[0]!.headers.connection, path).toBe('close')
    }
  })

  test('the gateway is still healthy and its log shows no unexpected error', async () => {
    const health = await fetch(`${gateway.url}/health`)
    expect(health.status).toBe(200)
    await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
    const log = await waitForLog()
    expect(log).not.toContain('unexpected error')
  })

  test('after the barrage, gateway stop drains at once: nothing refused was counted as in flight', async () => {
    const stopped = await runCli(['gateway', 'stop', '--timeout', '4000'], { home: world.home })
    expect(stopped.stdout).toContain('Gateway stopped')
    expect(stopped.code).toBe(0)
    expect(await gateway.proc.exited).toBe(0)
    const log = readLog()
    expect(log).not.toContain('drain budget exhausted')
    expect(log).toContain('gateway stopped')
  })
})

const logPath = () => join(world.home, '.xopcbot', 'logs', 'gateway.log')
const readLog = () => readFileSync(logPath(), 'utf8')
async function waitForLog(): Promise<string> {
  await waitFor(() => readLog().includes('GET /api/status 200'), { what: 'the status request in the log' })
  return readLog()
}
