const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** A client's own X-Request-Id is kept when it is short and plain; otherwise a new one is made. */
export function requestIdFor(request: Request): string {
  const given = request.headers.get('x-request-id')
  return given && CLIENT_ID.test(given) ? given : crypto.randomUUID()
}

/** Per-request facts the log line needs after the response is sent. */
export interface RequestFacts {
  id: string
  path: string
  start: number
}

const facts = new WeakMap<Request, RequestFacts>()

export function recordRequest(request: Request, value: RequestFacts) {
  facts.set(request, value)
}

export function factsOf(request: Request): RequestFacts | undefined {
  return facts.get(request)
}

/** The id of a request the front door has admitted (undefined for one built and handled elsewhere). */
export function requestIdOf(request: Request): string | undefined {
  return facts.get(request)?.id
}
