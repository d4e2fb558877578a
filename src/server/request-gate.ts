import { AppError } from '../errors'

/**
 * The first thing every request meets, before routing, auth or the in-flight count (SPEC §7): the request
 * must name a valid authority in exactly one `Host` header. Bun builds `request.url` from `Host`; with a
 * malformed one (`x@y`, `a b`, empty, absent over HTTP/1.0, `[zz]`) the URL is relative or unparsable, and
 * any code that derives the path from it would see another path than the router routes.
 *
 * What Bun's own parser refuses (a control character in the target, obs-fold, Content-Length together with
 * Transfer-Encoding, a request line without an origin-form target) never reaches JavaScript: Bun answers
 * those with a bare 4xx/5xx and closes the connection.
 */

/** A DNS name or IPv4 address, or an IPv6 literal in brackets; optional port. No userinfo, no spaces. */
const AUTHORITY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::(\d{1,5}))?$/

const PLAIN_LENGTH = /^\d{1,15}$/

/** Why a request cannot be served, or null when it may go on. */
export function refusalOf(request: Request): string | null {
  const host = request.headers.get('host')
  const url = request.url
  if (!url.startsWith('http://') && !url.startsWith('https://')) {
    return host === null ? 'the Host header is missing (HTTP/1.0 requests need one too)' : 'the Host header is not a valid host[:port]'
  }
  // Only a request built in this process (app.handle) has an absolute URL and no Host: Bun refuses an
  // HTTP/1.1 request without Host itself, and gives an HTTP/1.0 one a relative URL.
  // Bun joins a repeated Content-Length ("10, 10"): the body's framing is ambiguous, and a body parser that
  // did not see one number could not hold it to the size limit before reading it.
  const length = request.headers.get('content-length')
  if (length !== null && !PLAIN_LENGTH.test(length)) return 'the Content-Length header must be one whole number'
  if (host === null) return null
  // Nearly every request names the same host as the one before: it was checked then.
  if (host === lastValidHost) return null
  const match = AUTHORITY.exec(host)
  // Bun joins repeated headers with ", ", which the pattern refuses: two Host headers are refused here.
  if (!match) return host.includes(',') ? 'more than one Host header' : 'the Host header is not a valid host[:port]'
  if (match[1] !== undefined && Number(match[1]) > 65535) return 'the Host header has an invalid port'
  // Only an IPv6 literal can still be malformed after the pattern (e.g. "[1:::2]").
  if (host.charCodeAt(0) === 0x5b && !URL.canParse(url)) return 'the Host header is not a valid host[:port]'
  lastValidHost = host
  return null
}

let lastValidHost: string | null = null

/** The authority a request was sent to: its Host header, or for a request built in this process, its URL's. */
export function authorityOf(request: Request): string {
  const host = request.headers.get('host')
  if (host !== null) return host
  const url = request.url
  const start = url.indexOf('://') + 3
  const end = url.indexOf('/', start)
  return end < 0 ? url.slice(start) : url.slice(start, end)
}

/** The error a refused request is answered with. */
export function refusalError(reason: string): AppError {
  return new AppError('INVALID_REQUEST', `malformed request: ${reason}`, { headers: { connection: 'close' } })
}

/**
 * Path of a request URL, as the router sees it, without parsing the URL whole (this runs on every request).
 * Works on relative URLs too, so no request can make it compute another path than the router's.
 */
export function pathOf(url: string): string {
  let start = 0
  if (url.charCodeAt(0) !== 0x2f) {
    const scheme = url.indexOf('://')
    start = scheme < 0 ? -1 : url.indexOf('/', scheme + 3)
    if (start < 0) return '/'
  }
  const query = url.indexOf('?', start)
  return query < 0 ? url.slice(start) : url.slice(start, query)
}
