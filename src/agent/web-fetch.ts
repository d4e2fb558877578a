import { z } from 'zod'
import type { Logger } from '../logging/logger'
import { checkDestination, systemResolve, type Resolve } from '../net/ssrf'
import { VERSION } from '../version'
import type { AgentTool } from './tools'
import { readCapped } from '../net/read-capped'

/** `agent.webFetch` (src/config/schema.ts). */
export interface WebFetchLimits {
  allowPrivate: boolean
  maxBytes: number
  maxChars: number
  timeoutMs: number
  maxRedirects: number
}

export type WebFetchResult =
  | { url: string; status: number; content_type: string; title?: string; content: string; truncated?: string }
  | { url: string; status: number; content_type: string; bytes: number | null; note: string }
  | { error: string }

/** A refusal or failure, worded for the model. */
class FetchRefused extends Error {}

const HTML = /^(text\/html|application\/xhtml\+xml)$/
const JSON_TYPE = /^application\/([\w.+-]+\+)?json$|^text\/json$/
const TEXT = /^text\/|^application\/([\w.+-]+\+)?xml$|^application\/(javascript|ecmascript|x-www-form-urlencoded|x-sh|x-yaml|yaml|toml|sql|graphql|ld\+json)$/

/** `host[:port]` of a URL: what the log and the errors name (paths and query strings can hold tokens). */
const hostOf = (url: URL) => url.host


function decode(bytes: Uint8Array, charset: string | undefined): string {
  try {
    return new TextDecoder((charset ?? 'utf-8') as never).decode(bytes)
  } catch {
    return new TextDecoder('utf-8').decode(bytes)
  }
}

const rejectOnAbort = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason)
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })

/** A body without a Content-Type is treated as text when its first bytes hold no NUL (binary files usually do). */
const looksLikeText = (bytes: Uint8Array) => !bytes.subarray(0, 1024).includes(0)

export interface WebFetchDeps {
  log: Logger
  /** how host names are resolved (default: the system resolver) */
  resolve?: Resolve
}

/**
 * Fetches one http(s) URL for the model and returns its readable text. Redirects are followed by hand, each
 * hop checked again by the address guard (src/net/ssrf.ts) before anything is sent to it.
 *
 * Pinning: the request goes to the address the guard checked, not to the name, so a DNS answer that changes
 * between the check and the connection (rebinding) cannot redirect it. The URL's host is replaced by that
 * address and the name travels in the Host header; for https, `tls.serverName` sends it as SNI and the
 * certificate is verified against the name, exactly as for a request by name (Bun's fetch verifies against
 * `serverName` when given). An HTTP proxy from the environment (HTTPS_PROXY …) is handed the checked address.
 */
export async function webFetch(target: string, limits: WebFetchLimits, deps: WebFetchDeps, signal?: AbortSignal): Promise<WebFetchResult> {
  const log = deps.log
  const timeout = AbortSignal.timeout(limits.timeoutMs)
  const abort = signal ? AbortSignal.any([timeout, signal]) : timeout
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return { error: `${JSON.stringify(target.slice(0, 200))} is not a valid URL; give a full http:// or https:// address` }
  }
  let current = url
  try {
    for (let hop = 0; ; hop++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:') {
        throw new FetchRefused(`only http and https URLs are fetched, not ${current.protocol.replace(/:$/, '')}:`)
      }
      if (current.username || current.password) throw new FetchRefused('URLs with a user name or password are not fetched')
      // The resolver takes no signal: a hanging DNS answer is cut off by the same time limit as the rest.
      const destination = await Promise.race([checkDestination(current, { allowPrivate: limits.allowPrivate, resolve: deps.resolve ?? systemResolve }), rejectOnAbort(abort)])
      if (!destination.ok) {
        log.info('web_fetch refused', { host: hostOf(current), reason: destination.reason })
        throw new FetchRefused(destination.reason)
      }
      const pinned = new URL(current)
      pinned.hostname = destination.family === 6 ? `[${destination.address}]` : destination.address
      const isName = !/^\[|^\d+\.\d+\.\d+\.\d+$/.test(current.hostname)
      const response = await fetch(pinned, {
        redirect: 'manual',
        signal: abort,
        headers: {
          host: current.host,
          'user-agent': `xopcbot/${VERSION} (web_fetch)`,
          accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5',
        },
        ...(current.protocol === 'https:' && isName ? { tls: { serverName: current.hostname } } : {}),
      })
      log.info('web_fetch', { host: hostOf(current), status: response.status })
      if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
        await response.body?.cancel().catch(() => {})
        if (hop >= limits.maxRedirects) throw new FetchRefused(`too many redirects: ${hostOf(url)} still redirected after ${limits.maxRedirects} (agent.webFetch.maxRedirects)`)
        try {
          current = new URL(response.headers.get('location')!, current)
        } catch {
          throw new FetchRefused(`${hostOf(current)} redirected to an invalid URL`)
        }
        continue
      }
      if (response.status < 200 || response.status >= 300) {
        await response.body?.cancel().catch(() => {})
        throw new FetchRefused(`${hostOf(current)} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`)
      }
      return await readable(current, response, limits, abort)
    }
  } catch (error) {
    if (error instanceof FetchRefused) return { error: error.message }
    if (timeout.aborted) return { error: `fetching ${hostOf(current)} took longer than ${limits.timeoutMs} ms (agent.webFetch.timeoutMs); nothing was returned` }
    if (signal?.aborted) return { error: 'the fetch was cancelled' }
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string' && /^(ERR_TLS|CERT_|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO)/.test(code)) {
      return { error: `the TLS certificate of ${hostOf(current)} could not be verified (${code}); nothing was read` }
    }
    // Bun's fetch names the URL it tried (the pinned address, path and query): only the host is passed on.
    const message = error instanceof Error ? error.message.replace(/ fetching "[^"]*"/, '').replace(/\. For more information.*$/, '') : String(error)
    return { error: `cannot fetch from ${hostOf(current)}: ${message}${typeof code === 'string' && !message.includes(code) ? ` (${code})` : ''}` }
  }
}

/** The response as the model should see it: text for text, a description for everything else. */
async function readable(url: URL, response: Response, limits: WebFetchLimits, abort: AbortSignal): Promise<WebFetchResult> {
  const header = response.headers.get('content-type') ?? ''
  const type = header.split(';')[0]!.trim().toLowerCase()
  const charset = /charset\s*=\s*"?([\w.:-]+)/i.exec(header)?.[1]
  const base = { url: url.href, status: response.status, content_type: type || 'unknown' }
  const textual = HTML.test(type) || JSON_TYPE.test(type) || TEXT.test(type) || type === ''
  if (!textual) {
    // Images, PDFs, archives…: described, never dumped into the conversation. Counted up to the byte limit.
    const declared = Number(response.headers.get('content-length'))
    if (Number.isFinite(declared) && declared > 0) {
      await response.body?.cancel().catch(() => {})
      return { ...base, bytes: declared, note: `${type} content of ${declared} bytes; it is not text, so it was not read` }
    }
    const { bytes, cut } = await readCapped(response.body, limits.maxBytes)
    return { ...base, bytes: bytes.byteLength, note: `${type} content of ${cut ? 'more than ' : ''}${bytes.byteLength} bytes; it is not text, so it was not read` }
  }
  const { bytes, cut } = await readCapped(response.body, limits.maxBytes)
  abort.throwIfAborted()
  if (type === '' && !looksLikeText(bytes)) {
    return { ...base, bytes: bytes.byteLength, note: `content of ${cut ? 'more than ' : ''}${bytes.byteLength} bytes without a Content-Type; it is not text, so it was not read` }
  }
  const text = decode(bytes, charset)
  let content: string
  let title: string | null = null
  if (HTML.test(type)) {
    const { htmlToMarkdown } = await import('./html-to-markdown')
    const page = htmlToMarkdown(text, url.href)
    content = page.markdown
    title = page.title
  } else if (JSON_TYPE.test(type) && !cut) {
    try {
      content = JSON.stringify(JSON.parse(text), null, 2)
    } catch {
      content = text
    }
  } else content = text
  const notes: string[] = []
  if (cut) notes.push(`only the first ${limits.maxBytes} bytes of the page were read (agent.webFetch.maxBytes)`)
  if (content.length > limits.maxChars) {
    notes.push(`the text was cut to ${limits.maxChars} of its ${content.length} characters (agent.webFetch.maxChars)`)
    content = content.slice(0, limits.maxChars)
  }
  return { ...base, ...(title ? { title } : {}), content, ...(notes.length ? { truncated: notes.join('; ') } : {}) }
}

/** The `web_fetch` tool: the readable text of a web page (or a described binary), within the configured limits. */
export function webFetchTool(limits: WebFetchLimits, deps: WebFetchDeps): AgentTool<{ url: string }> {
  const log = deps.log.withTag('web_fetch')
  return {
    name: 'web_fetch',
    description:
      'Fetch an http(s) URL and return its readable content: the main text of an HTML page as Markdown, text and JSON as text; images and other files are only described (type, size). Private and local network addresses are refused.',
    input: z.object({ url: z.string().describe('the full http:// or https:// URL to fetch') }),
    run: ({ url }, signal) => webFetch(url, limits, { ...deps, log }, signal),
  }
}
