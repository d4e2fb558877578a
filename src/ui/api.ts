/**
 * The Control UI's one door to the gateway: same-origin fetches with the token from sessionStorage (never
 * localStorage, a URL or a cookie: it must not outlive the tab or leak into history and logs).
 */

const TOKEN_KEY = 'xopcbot.token'

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
}

/** An error answer of the API (`{error:{code,message}}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

type UnauthorizedListener = (message: string) => void
let onUnauthorized: UnauthorizedListener = () => {}

/** Who hears about a 401 that the token (or its absence) should have prevented: the app, which shows the login. */
export function whenUnauthorized(listener: UnauthorizedListener) {
  onUnauthorized = listener
}

function headersWith(extra: Record<string, string> = {}): Record<string, string> {
  const current = token.get()
  return current ? { ...extra, authorization: `Bearer ${current}` } : extra
}

async function errorOf(response: Response): Promise<ApiError> {
  let code = `HTTP_${response.status}`
  let message = `${response.status} ${response.statusText}`.trim()
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } } | null
    if (body?.error?.message) {
      code = String(body.error.code ?? code)
      message = String(body.error.message)
    }
  } catch {}
  return new ApiError(response.status, code, message)
}

export interface RequestOptions {
  method?: string
  body?: unknown
  signal?: AbortSignal
  /** a 401 is the caller's business (the login form, the logs page) instead of a return to the login */
  quiet401?: boolean
}

/** Sends a request and returns the response once it is a success; errors become ApiError. */
export async function send(path: string, { method = 'GET', body, signal, quiet401 = false }: RequestOptions = {}, accept = 'application/json'): Promise<Response> {
  let response: Response
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: headersWith(body === undefined ? { accept } : { accept, 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    })
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error
    throw new ApiError(0, 'NETWORK', 'the gateway cannot be reached')
  }
  if (response.ok) return response
  const error = await errorOf(response)
  if (response.status === 401 && !quiet401) onUnauthorized(error.message)
  throw error
}

export async function api<T = any>(path: string, options: RequestOptions = {}): Promise<T> {
  return (await send(path, options)).json() as Promise<T>
}

export interface SseEvent {
  event: string
  data: string
}

/**
 * Reads a Server-Sent Events body (EventSource cannot send the Authorization header, so the UI reads the
 * stream of a fetch): calls `onEvent` for each event, ignores comments, ends with the stream.
 */
export async function readSse(response: Response, onEvent: (event: SseEvent) => void): Promise<void> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let event = 'message'
  let data: string[] = []
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let newline: number
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '')
      buffer = buffer.slice(newline + 1)
      if (line === '') {
        if (data.length) onEvent({ event, data: data.join('\n') })
        event = 'message'
        data = []
      } else if (line.startsWith(':')) {
        // a keep-alive comment
      } else {
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const rest = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') event = rest
        else if (field === 'data') data.push(rest)
      }
    }
  }
}

/** Opens an SSE endpoint with the token and reads it until it ends or `signal` aborts. */
export async function stream(path: string, options: RequestOptions, onEvent: (event: SseEvent) => void, onOpen?: () => void): Promise<void> {
  const response = await send(path, options, 'text/event-stream')
  onOpen?.()
  await readSse(response, onEvent)
}

/** A session as GET /api/sessions lists it. */
export interface SessionSummary {
  key: string
  channel: string | null
  chat_id: string | null
  message_count: number
  created_at: string
  updated_at: string
}
