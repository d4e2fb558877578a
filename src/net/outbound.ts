/** A 3xx answer to an outbound request: refused, never followed. */
export class RedirectRefused extends Error {
  override readonly name = 'RedirectRefused'
  constructor(
    readonly status: number,
    target: string,
  ) {
    super(`${target} answered HTTP ${status} (redirects are not followed)`)
  }
}

/**
 * The one way the gateway sends an HTTP request to another server (SPEC §7: outbound requests never follow
 * redirects). Following one would re-send a signed body, or a token that sits in a URL, to a host nobody
 * configured; so a 3xx answer is refused — its body discarded, nothing sent to its `Location` — and reported as
 * `RedirectRefused`. Every other answer is returned as it is.
 *
 * `target` names the server in that error (default: the URL's origin, since paths can hold tokens).
 */
export async function outboundFetch(url: string | URL | Request, init: RequestInit = {}, options: { target?: string } = {}): Promise<Response> {
  const response = await fetch(url, { ...init, redirect: 'manual' })
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel().catch(() => {})
    throw new RedirectRefused(response.status, options.target ?? new URL(url instanceof Request ? url.url : url).origin)
  }
  return response
}
