import { createHash, timingSafeEqual } from 'node:crypto'
import { AppError } from '../errors'
import { authorityOf } from './request-gate'
import { isUiPath } from './ui-paths'

export interface AuthOptions {
  /** The current API token, read on every request so a rotated token applies at once. */
  token: () => string | null
  /** Address of the peer of a request; null when unknown (treated as not loopback). */
  peerAddress: (request: Request) => string | null
  limiter: AuthFailureLimiter
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(address: string | null): boolean {
  if (!address) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)
}

/** The Host a request was sent to names this machine: localhost, *.localhost, 127.x.y.z or [::1]. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '')
  return host === 'localhost' || host.endsWith('.localhost') || isLoopbackAddress(host)
}

const digest = (value: string) => createHash('sha256').update(value).digest()

/** Constant-time comparison (hashing first makes the lengths equal, so length is not leaked either). */
export function tokensMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}

/**
 * Counts wrong tokens per address. After `maxFailures` inside `windowMs`, every token attempt from that
 * address is answered 429 until the window ends, so a token cannot be guessed at network speed.
 */
export class AuthFailureLimiter {
  private failures = new Map<string, { count: number; resetAt: number }>()

  constructor(
    private readonly options: { maxFailures: number; windowMs: number; now?: () => number } = { maxFailures: 10, windowMs: 60_000 },
  ) {}

  private now() {
    return this.options.now?.() ?? Date.now()
  }

  /** Seconds until the address may try again, or 0 when it is not limited. */
  retryAfter(address: string): number {
    const entry = this.failures.get(address)
    if (!entry) return 0
    const left = entry.resetAt - this.now()
    if (left <= 0) {
      this.failures.delete(address)
      return 0
    }
    return entry.count >= this.options.maxFailures ? Math.ceil(left / 1000) : 0
  }

  fail(address: string) {
    const now = this.now()
    if (this.failures.size > 10_000) for (const [key, entry] of this.failures) if (entry.resetAt <= now) this.failures.delete(key)
    const entry = this.failures.get(address)
    if (!entry || entry.resetAt <= now) this.failures.set(address, { count: 1, resetAt: now + this.options.windowMs })
    else entry.count++
  }
}

/**
 * What the limiter counts failures by: an IPv4 address, or the /64 of an IPv6 address — one host usually has a
 * whole /64, so counting single IPv6 addresses would give an attacker 2^64 fresh tries.
 */
export function limiterKeyOf(address: string): string {
  const plain = (address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address).replace(/%.*$/, '')
  if (!plain.includes(':')) return plain
  const [head = '', tail = ''] = plain.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = plain.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left
  return `${groups
    .slice(0, 4)
    .map((group) => (parseInt(group, 16) || 0).toString(16))
    .join(':')}::/64`
}

const HOW_TO_SET = 'set gateway.auth.token in the config (or XOPCBOT_GATEWAY_TOKEN) and send "Authorization: Bearer <token>"'

/** The host name of a Host header that passed the request gate: brackets of an IPv6 literal kept, port dropped. */
export function hostnameOf(host: string): string {
  if (host.charCodeAt(0) === 0x5b) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.indexOf(':')
  return colon < 0 ? host : host.slice(0, colon)
}

/**
 * Decides whether a request may use an /api route (SPEC §7). `mode` "token" always needs the token
 * (used by /api/logs); "default" lets loopback clients in when no token is configured.
 *
 * A correct token is always accepted, whatever other clients of the same address did: the limiter answers
 * wrong guesses only (429 once an address has failed too often), so nobody can lock the owner out.
 */
export function authorize(request: Request, mode: 'default' | 'token', options: AuthOptions): void {
  const expected = options.token()
  const header = request.headers.get('authorization')

  if (expected) {
    const match = header === null ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    if (match && tokensMatch(match[1]!, expected)) return
    const address = limiterKeyOf(options.peerAddress(request) ?? 'unknown')
    const limited = options.limiter.retryAfter(address)
    if (limited > 0) {
      throw new AppError('RATE_LIMITED', `too many failed authentication attempts from this address; try again in ${limited} s`, {
        headers: { 'retry-after': String(limited) },
      })
    }
    if (header === null) throw new AppError('UNAUTHORIZED', `missing API token: send "Authorization: Bearer <token>"`)
    if (!match) throw new AppError('UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"')
    options.limiter.fail(address)
    throw new AppError('UNAUTHORIZED', 'invalid API token')
  }

  if (mode === 'token') throw new AppError('UNAUTHORIZED', `this endpoint always needs an API token, and none is configured: ${HOW_TO_SET}`)
  if (!isLoopbackAddress(options.peerAddress(request))) {
    throw new AppError('UNAUTHORIZED', `no API token is configured, so only requests from this machine are accepted: ${HOW_TO_SET}`)
  }
  const hostname = hostnameOf(authorityOf(request))
  if (!isLoopbackHost(hostname)) {
    throw new AppError('UNAUTHORIZED', `requests without a token must be addressed to localhost, not ${JSON.stringify(hostname)} (DNS-rebinding guard): use http://localhost:<port> or ${HOW_TO_SET}`)
  }
}

export type AuthMode = 'default' | 'token' | 'none'

/** Paths whose spelling is plain enough to be matched literally; anything else is never public. */
const PLAIN_PATH = /^[A-Za-z0-9/_.-]+$/
const WEBHOOK_PATH = /^\/api\/webhook\/[a-z0-9_-]{1,32}$/

/** Percent-decoded (where valid), repeated slashes folded, lower case: no spelling of /api/logs slips past. */
function folded(path: string): string {
  let out = path
  if (out.includes('%')) {
    try {
      out = decodeURIComponent(out)
    } catch {}
  }
  return out.replace(/\/{2,}/g, '/').toLowerCase()
}

/**
 * Which requests need what (SPEC §7), decided on the path the router routes and closed by default, so that
 * a new route cannot forget it: /health, /openapi.json, the webhook routes (they verify their channel's own
 * signature) and the local control routes (the lock's nonce) are public when spelled plainly; /api/logs in
 * any spelling always needs the token; everything else — every /api and /v1 route, and unknown paths —
 * needs the token, or loopback when none is configured.
 */
export function authModeFor(path: string): AuthMode {
  let mode = modes.get(path)
  if (mode === undefined) {
    mode = decideAuthMode(path)
    // Paths are the client's to choose: the memo is bounded, and simply starts over when full.
    if (modes.size >= MAX_MEMO) modes.clear()
    modes.set(path, mode)
  }
  return mode
}

/** The decision depends on the path alone and runs on every request: remembered for the paths seen last. */
const modes = new Map<string, AuthMode>()
const MAX_MEMO = 512

function decideAuthMode(path: string): AuthMode {
  if (folded(path).startsWith('/api/logs')) return 'token'
  if (!PLAIN_PATH.test(path) || path.includes('/.')) return 'default'
  // The Control UI's page and assets are public; the data it shows comes from /api/*.
  if (path === '/health' || path === '/openapi.json' || isUiPath(path)) return 'none'
  if (WEBHOOK_PATH.test(path) || path.startsWith('/_control/')) return 'none'
  return 'default'
}
