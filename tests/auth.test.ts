import { describe, expect, test } from 'bun:test'
import { AuthFailureLimiter, authModeFor, limiterKeyOf, isLoopbackAddress, isLoopbackHost, tokensMatch } from '../src/server/auth'
import { pathOf, refusalOf } from '../src/server/request-gate'
import { makeApp, request } from './helpers/app'

const TOKEN = 'the-right-token-0123456789'

async function errorOf(response: Response) {
  return ((await response.json()) as { error: { code: string; message: string } }).error
}

describe('without a token configured', () => {
  test('loopback peer + loopback Host → allowed', async () => {
    for (const [peer, host] of [
      ['127.0.0.1', 'localhost:18790'],
      ['::1', '[::1]:18790'],
      ['::ffff:127.0.0.1', '127.0.0.1'],
      ['127.0.0.5', 'app.localhost'],
    ]) {
      const { app } = makeApp({ peerAddress: () => peer! })
      const response = await app.handle(request('/api/status', { host }))
      expect(response.status).toBe(200)
    }
  })

  test('loopback peer + foreign Host → 401 (DNS-rebinding guard)', async () => {
    const { app } = makeApp({ peerAddress: () => '127.0.0.1' })
    const response = await app.handle(request('/api/status', { host: 'attacker.example:18790' }))
    expect(response.status).toBe(401)
    const error = await errorOf(response)
    expect(error.code).toBe('UNAUTHORIZED')
    expect(error.message).toContain('attacker.example')
  })

  test('non-loopback peer → 401 that says how to set a token', async () => {
    const { app } = makeApp({ peerAddress: () => '192.0.2.10' })
    const response = await app.handle(request('/api/status'))
    expect(response.status).toBe(401)
    expect((await errorOf(response)).message).toContain('gateway.auth.token')
  })

  test('unknown peer (no socket) is not trusted', async () => {
    const { app } = makeApp({ peerAddress: () => null })
    expect((await app.handle(request('/api/status'))).status).toBe(401)
  })

  test('/api/logs always needs a token, even from loopback', async () => {
    const { app } = makeApp()
    const response = await app.handle(request('/api/logs'))
    expect(response.status).toBe(401)
    expect((await errorOf(response)).message).toContain('always needs an API token')
  })

  test('other spellings of an /api path do not skip the check', async () => {
    const { app } = makeApp({ peerAddress: () => '192.0.2.10' })
    for (const path of ['/%61pi/status', '//api/status', '/api//status', '/api/./status']) {
      const response = await app.handle(request(path))
      expect([401, 404]).toContain(response.status)
      expect(response.status === 200).toBe(false)
    }
  })
})

describe('with a token configured', () => {
  const withToken = (peer = '192.0.2.10', limiter?: AuthFailureLimiter) => makeApp({ token: () => TOKEN, peerAddress: () => peer, ...(limiter ? { authLimiter: limiter } : {}) })

  test('missing token → 401, also from loopback', async () => {
    const { app } = withToken('127.0.0.1')
    const response = await app.handle(request('/api/status'))
    expect(response.status).toBe(401)
    expect((await errorOf(response)).message).toContain('Authorization: Bearer')
  })

  test('wrong token → 401', async () => {
    const { app } = withToken()
    const response = await app.handle(request('/api/status', { headers: { authorization: 'Bearer not-the-token' } }))
    expect(response.status).toBe(401)
    expect((await errorOf(response)).code).toBe('UNAUTHORIZED')
  })

  test('not a Bearer header → 401', async () => {
    const { app } = withToken()
    const response = await app.handle(request('/api/status', { headers: { authorization: `Basic ${btoa('u:' + TOKEN)}` } }))
    expect(response.status).toBe(401)
  })

  test('right token → 200 from any address and Host', async () => {
    const { app } = withToken()
    const response = await app.handle(request('/api/status', { host: 'my-server.lan:18790', headers: { authorization: `Bearer ${TOKEN}` } }))
    expect(response.status).toBe(200)
    expect(((await response.json()) as { status: string }).status).toBe('ok')
  })

  test('a rotated token applies to the next request', async () => {
    let current = TOKEN
    const { app } = makeApp({ token: () => current, peerAddress: () => '192.0.2.10' })
    expect((await app.handle(request('/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }))).status).toBe(200)
    current = 'a-brand-new-token-value'
    expect((await app.handle(request('/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }))).status).toBe(401)
    expect((await app.handle(request('/api/status', { headers: { authorization: 'Bearer a-brand-new-token-value' } }))).status).toBe(200)
  })

  test('repeated failures from one address → 429 with Retry-After for wrong tokens; the right token is never locked out', async () => {
    let now = 1_000_000
    const limiter = new AuthFailureLimiter({ maxFailures: 5, windowMs: 60_000, now: () => now })
    let peer = '192.0.2.10'
    const { app } = makeApp({ token: () => TOKEN, peerAddress: () => peer, authLimiter: limiter })
    const wrong = () => app.handle(request('/api/status', { headers: { authorization: 'Bearer wrong-guess' } }))
    for (let i = 0; i < 5; i++) expect((await wrong()).status).toBe(401)
    const limited = await wrong()
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('60')
    expect((await errorOf(limited)).code).toBe('RATE_LIMITED')
    // A missing token counts as a guess too, while the owner's correct token still gets in.
    expect((await app.handle(request('/api/status'))).status).toBe(429)
    expect((await app.handle(request('/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }))).status).toBe(200)
    expect((await wrong()).status).toBe(429)
    peer = '192.0.2.11'
    expect((await app.handle(request('/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }))).status).toBe(200)
    peer = '192.0.2.10'
    now += 60_001
    expect((await app.handle(request('/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }))).status).toBe(200)
  })

  test('IPv6 failures count per /64: changing the address inside it does not give fresh tries', async () => {
    const limiter = new AuthFailureLimiter({ maxFailures: 5, windowMs: 60_000 })
    let host = 1
    const { app } = makeApp({ token: () => TOKEN, peerAddress: () => `2001:db8:7:7::${(host++).toString(16)}`, authLimiter: limiter })
    const wrong = () => app.handle(request('/api/status', { headers: { authorization: 'Bearer wrong-guess' } }))
    for (let i = 0; i < 5; i++) expect((await wrong()).status).toBe(401)
    expect((await wrong()).status).toBe(429)
  })

  test('/health needs no token', async () => {
    const { app } = withToken()
    expect((await app.handle(request('/health'))).status).toBe(200)
  })
})

describe('CORS', () => {
  const origin = 'https://app.example.com'

  test('no origins configured → no CORS headers, preflight is not answered', async () => {
    const { app } = makeApp()
    const response = await app.handle(request('/api/status', { headers: { origin } }))
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    const preflight = await app.handle(request('/api/status', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } }))
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
  })

  test('a configured origin gets a preflight answer and CORS headers; another origin does not', async () => {
    const { app } = makeApp({ corsOrigins: [origin], token: () => TOKEN })
    const preflight = await app.handle(
      request('/api/status', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } }),
    )
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin)
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization')
    const actual = await app.handle(request('/api/status', { headers: { origin, authorization: `Bearer ${TOKEN}` } }))
    expect(actual.status).toBe(200)
    expect(actual.headers.get('access-control-allow-origin')).toBe(origin)
    expect(actual.headers.get('vary')).toContain('Origin')
    const other = await app.handle(request('/api/status', { headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` } }))
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('auth helpers', () => {
  test('loopback addresses and hosts', () => {
    expect(isLoopbackAddress('127.0.0.1')).toBe(true)
    expect(isLoopbackAddress('127.255.0.3')).toBe(true)
    expect(isLoopbackAddress('::1')).toBe(true)
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true)
    expect(isLoopbackAddress('10.0.0.1')).toBe(false)
    expect(isLoopbackAddress('::ffff:10.0.0.1')).toBe(false)
    expect(isLoopbackAddress('1270.0.0.1')).toBe(false)
    expect(isLoopbackHost('LOCALHOST')).toBe(true)
    expect(isLoopbackHost('[::1]')).toBe(true)
    expect(isLoopbackHost('localhost.evil.com')).toBe(false)
    expect(isLoopbackHost('127.0.0.1.nip.io')).toBe(false)
  })

  test('tokensMatch compares whole values', () => {
    expect(tokensMatch(TOKEN, TOKEN)).toBe(true)
    expect(tokensMatch(TOKEN.slice(0, -1), TOKEN)).toBe(false)
    expect(tokensMatch(TOKEN + 'x', TOKEN)).toBe(false)
    expect(tokensMatch('', TOKEN)).toBe(false)
  })
})

describe('the request gate and the auth map', () => {
  const withHost = (host: string | null, url = 'http://localhost/api/status') => {
    const headers = new Headers()
    if (host !== null) headers.set('host', host)
    return { url, headers } as unknown as Request
  }

  test('a Host that is not one valid authority is refused; a relative URL (HTTP/1.0 without Host) too', () => {
    for (const host of ['x@y', 'a b', '', '[zz]', 'localhost/x', 'localhost:99999', 'localhost:', 'a, b', '127.0.0.1:80, evil', '-lead']) {
      expect(refusalOf(withHost(host)), host).not.toBeNull()
    }
    expect(refusalOf(withHost(null, '/api/logs'))).toContain('Host header is missing')
    expect(refusalOf(withHost('x@y', '/api/logs'))).not.toBeNull()
    for (const host of ['localhost', 'localhost:18790', '127.0.0.1:1', '[::1]:18790', 'a', 'my-box.lan', 'xn--bcher-kva.example']) {
      expect(refusalOf(withHost(host, `http://${host}/api/status`)), host).toBeNull()
    }
    // Built in this process (app.handle): the URL carries the authority.
    expect(refusalOf(withHost(null))).toBeNull()
  })

  test('the limiter counts IPv4 addresses one by one and IPv6 addresses by their /64', () => {
    expect(limiterKeyOf('192.0.2.10')).toBe('192.0.2.10')
    expect(limiterKeyOf('::ffff:192.0.2.10')).toBe('192.0.2.10')
    expect(limiterKeyOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(limiterKeyOf('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64')
    expect(limiterKeyOf('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(limiterKeyOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(limiterKeyOf('::1')).toBe('0:0:0:0::/64')
  })

  test('pathOf gives the routed path for absolute and relative URLs alike', () => {
    expect(pathOf('http://a/health/api/logs?x=1')).toBe('/health/api/logs')
    expect(pathOf('http://localhost:18790/api/logs')).toBe('/api/logs')
    expect(pathOf('/api/logs?q=1')).toBe('/api/logs')
    expect(pathOf('http://localhost')).toBe('/')
  })

  test('auth is closed by default: only plainly spelled public paths are public; /api/logs in any spelling needs the token', () => {
    for (const path of ['/health', '/openapi.json', '/api/webhook/myapp', '/_control/stop', '/', '/ui/chunk-abc.js']) expect(authModeFor(path), path).toBe('none')
    for (const path of ['/api/logs', '/api/logs/', '/API/LOGS', '/api/%6cogs', '//api//logs', '/api/logs/stream', '/api/logsx']) expect(authModeFor(path), path).toBe('token')
    for (const path of ['/api/status', '/v1/models', '/nope', '/ui', '/UI/chunk-abc.js', '/ui/../api/status', '/ui/%2e%2e/api/status', '/health/', '/health/../api/status', '/api/webhook/%2e%2e', '/api/webhook/a/b', '/HEALTH', '/_test/slow']) {
      expect(authModeFor(path), path).toBe('default')
    }
  })
})
