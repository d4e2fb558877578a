/**
 * CORS for the configured origins only (SPEC §7); with none configured no CORS header is ever sent.
 * Returns the headers for a request from `origin`, or null when that origin is not allowed.
 */
export function corsHeaders(origin: string | null, allowed: ReadonlySet<string>): Record<string, string> | null {
  if (!origin || !allowed.has(origin)) return null
  return {
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'X-Request-Id, Retry-After, Allow',
    vary: 'Origin',
  }
}

export function preflightHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
    'access-control-allow-headers': 'Authorization, Content-Type, Accept, X-Request-Id',
    'access-control-max-age': '600',
    vary: 'Origin',
  }
}
