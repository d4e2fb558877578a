const ids = new WeakMap<Request, { id: string; start: number }>()
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** A client's own X-Request-Id is kept when it is short and plain; otherwise a new one is made. */
export function assignRequestId(request: Request): string {
  const given = request.headers.get('x-request-id')
  const id = given && CLIENT_ID.test(given) ? given : crypto.randomUUID()
  ids.set(request, { id, start: performance.now() })
  return id
}

export function requestIdOf(request: Request): string | undefined {
  return ids.get(request)?.id
}

export function requestStartOf(request: Request): number | undefined {
  return ids.get(request)?.start
}
