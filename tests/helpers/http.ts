/** The JSON body of a response, untyped: tests assert on its shape. */
export const json = async (response: Response) => (await response.json()) as any

/** POSTs `body` as JSON: a string is sent as it is (malformed or signed bodies), no body when none is given. */
export const postJson = (url: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body),
  })

/** Whether a gateway answers /health with 200 within a second (on a fresh connection: it may just have stopped). */
export async function healthy(url: string): Promise<boolean> {
  return fetch(`${url}/health`, { signal: AbortSignal.timeout(1000), headers: { connection: 'close' } })
    .then((r) => r.status === 200)
    .catch(() => false)
}
