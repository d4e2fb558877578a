import { AppError } from '../errors'
import { factsOf, recordRequest } from './request-id'

/** Which methods a path is served for, in the order an Allow header lists them; null when no route has the path. */
export type MethodsOf = (path: string) => readonly string[] | null

const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
const rank = (method: string) => (ORDER.includes(method) ? ORDER.indexOf(method) : ORDER.length)

/** `/api/cron/` and `/api/cron` are one path to the router (its paths are not strict about a final slash). */
const trimmed = (path: string) => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path)

/** `/api/sessions/:key` → a pattern that matches what the router matches for it: one segment per parameter. */
function patternOf(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/')
  return new RegExp(`^${source}$`)
}

/**
 * The app's method table, built once from its routes. It is asked only when the router found no route for a
 * request, so routed requests pay nothing for it: a path served for other methods is then a 405 with `Allow`,
 * any other path stays a 404. A path served for GET takes HEAD too (the GET route answers it, without the body).
 */
export function methodTable(routes: readonly { method: string; path: string }[]): MethodsOf {
  const fixed = new Map<string, Set<string>>()
  const patterns = new Map<string, { pattern: RegExp; methods: Set<string> }>()
  for (const route of routes) {
    const path = trimmed(route.path)
    const methods = /[:*]/.test(path)
      ? (patterns.get(path) ?? patterns.set(path, { pattern: patternOf(path), methods: new Set() }).get(path)!).methods
      : (fixed.get(path) ?? fixed.set(path, new Set()).get(path)!)
    methods.add(route.method)
    if (route.method === 'GET') methods.add('HEAD')
  }
  const sorted = (methods: Iterable<string>) => [...methods].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  const frozenFixed = new Map([...fixed].map(([path, methods]) => [path, sorted(methods)]))
  const frozenPatterns = [...patterns.values()].map(({ pattern, methods }) => ({ pattern, methods: sorted(methods) }))
  return function methodsOf(requested: string) {
    const path = trimmed(requested)
    let found: Set<string> | null = null
    const exact = frozenFixed.get(path)
    // A fixed path can also match a parameter route (GET /api/cron/preview, DELETE /api/cron/:id).
    for (const { pattern, methods } of frozenPatterns) {
      if (!pattern.test(path)) continue
      found ??= new Set(exact)
      for (const method of methods) found.add(method)
    }
    if (found) return sorted(found)
    return exact ?? null
  }
}

/** 405 for a method the path is not served for: the Allow header and the message list the ones it is. */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): AppError {
  const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : allowed[0]
  return new AppError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use ${list}`, { headers: { allow: allowed.join(', ') } })
}

/**
 * A HEAD request as the GET it stands for. Elysia answers HEAD by running the GET route and reading the whole
 * answer to count its length, so the HEAD of a stream (GET /api/logs/stream) never got an answer. Bun's server
 * leaves the body out of the answer to a HEAD request (and cancels a stream) by itself.
 */
export function headAsGet(request: Request): Request {
  const get = new Request(request, { method: 'GET' })
  const facts = factsOf(request)
  if (facts) recordRequest(get, facts)
  return get
}
