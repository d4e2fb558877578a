import { AppError } from '../errors'

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length')
  // Only one plain number counts: Bun joins repeated headers ("10, 10"), which must not pass as "no limit known".
  const length = declared !== null && /^\d{1,15}$/.test(declared) ? Number(declared) : null
  if (length !== null && length > limit) throw tooLarge(limit)
  if (!request.body) return new Uint8Array()
  // With one Content-Length the server never hands over more than it declares: read it whole, natively
  // (a JavaScript stream reader costs more than the rest of a small request). Anything else is counted as it
  // is read, and the read stops just past the limit.
  if (length !== null) {
    const bytes = await request.bytes()
    if (bytes.byteLength > limit) throw tooLarge(limit)
    return bytes
  }
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

export const tooLarge = (limit: number) => new AppError('PAYLOAD_TOO_LARGE', `request body is larger than the limit of ${limit} bytes (gateway.maxBodyBytes)`)

const utf8 = new TextDecoder('utf-8', { fatal: true })
export const MAX_JSON_DEPTH = 64

/**
 * How deeply arrays and objects nest in a JSON text (strings skipped). Bodies nested deeper than any request
 * of this API are refused before they are parsed: validating them downstream costs time and memory that grow
 * with the square of the depth.
 */
export function jsonDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return max
}
const rawBodies = new WeakMap<Request, string>()

/** The exact text of a request's JSON body, for routes that verify a signature over it. */
export function rawBodyOf(request: Request): string {
  return rawBodies.get(request) ?? ''
}

/**
 * The one body parser of the API: JSON only, at most `limit` bytes (counted while reading, so a chunked
 * body cannot slip past a missing Content-Length), valid UTF-8. An empty body stands for `{}`, so that
 * routes without a body (or with an optional one) accept bare POST/DELETE requests and routes that need
 * fields name the missing ones. Every failure is an AppError that names the problem.
 */
export async function parseJsonBody(request: Request, contentType: string | undefined, limit: number): Promise<unknown> {
  const declared = request.headers.get('content-length')
  if (!request.body || declared === '0') return {}
  const bytes = await readLimited(request, limit)
  if (bytes.byteLength === 0) return {}
  if (!contentType || !JSON_TYPE.test(contentType)) {
    throw new AppError('INVALID_REQUEST', `Content-Type must be application/json (got ${contentType ? JSON.stringify(contentType) : 'none'})`)
  }
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    throw new AppError('INVALID_REQUEST', 'body: is not valid UTF-8')
  }
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw new AppError('INVALID_REQUEST', `body: is nested more than ${MAX_JSON_DEPTH} levels deep`)
  rawBodies.set(request, text)
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new AppError('INVALID_REQUEST', `body: is not valid JSON (${(error as Error).message.replace(/^JSON Parse error: /, '')})`)
  }
}
