import { connect, type Socket } from 'node:net'

/** One HTTP/1.x response as read off the socket. */
export interface RawResponse {
  status: number
  /** header names lower-cased; repeated headers joined with ", " */
  headers: Record<string, string>
  body: string
  /** the connection was closed by the server after this response */
  closed: boolean
  /** an event stream still open when reading stopped (nothing can follow it on this connection) */
  streaming?: boolean
}

/**
 * Parses the responses in `data` (as many as are complete), in order. `head`: they answer HEAD requests, so
 * none has a body, whatever its Content-Length or Transfer-Encoding says (RFC 9110 §9.3.2).
 */
export function parseResponses(data: Buffer, { head: answersHead = false } = {}): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = []
  let offset = 0
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset)
    if (end < 0) break
    const head = data.subarray(offset, end).toString('latin1').split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? NaN)
    const headers: Record<string, string> = {}
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    let bodyStart = end + 4
    let body: Buffer
    if (answersHead) body = Buffer.alloc(0)
    else if (headers['transfer-encoding']?.includes('chunked')) {
      const chunks: Buffer[] = []
      let at = bodyStart
      let complete = false
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at)
        if (lineEnd < 0) break
        const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16)
        if (Number.isNaN(size)) break
        if (data.length < lineEnd + 2 + size + 2) break
        if (size === 0) {
          at = lineEnd + 4
          complete = true
          break
        }
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
        at = lineEnd + 2 + size + 2
      }
      if (!complete) {
        // An event stream may never end: it counts as an answer once its head is in.
        if (headers['content-type']?.startsWith('text/event-stream')) {
          responses.push({ status, headers, body: Buffer.concat(chunks).toString('utf8'), closed: false, streaming: true })
          offset = data.length
        }
        break
      }
      body = Buffer.concat(chunks)
      bodyStart = at
    } else {
      const length = Number(headers['content-length'] ?? 0)
      if (data.length < bodyStart + length) break
      body = data.subarray(bodyStart, bodyStart + length)
      bodyStart += length
    }
    responses.push({ status, headers, body: body.toString('utf8'), closed: false })
    offset = bodyStart
  }
  return { responses, rest: data.subarray(offset) }
}

/**
 * Sends exact bytes to 127.0.0.1:`port` and reads until the server closes the connection or `expect`
 * responses have arrived (then closes it). Nothing is added, fixed or normalised on the way.
 */
export function rawExchange(
  port: number,
  bytes: string | Buffer,
  { expect = 1, timeoutMs = 5000, head = false, from }: { expect?: number; timeoutMs?: number; head?: boolean; from?: string } = {},
): Promise<{ responses: RawResponse[]; closed: boolean; leftover: string }> {
  return new Promise((resolve, reject) => {
    // `from`: another loopback source address (127.0.0.2, …), e.g. one the gateway's auth limiter counts apart.
    const socket: Socket = connect({ port, host: '127.0.0.1', ...(from ? { localAddress: from } : {}) })
    let data = Buffer.alloc(0)
    let settled = false
    const finish = (closed: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const { responses, rest } = parseResponses(data, { head })
      if (closed && responses.length) responses[responses.length - 1]!.closed = true
      resolve({ responses, closed, leftover: rest.toString('latin1') })
    }
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      socket.destroy()
      reject(new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(data.toString('latin1').slice(0, 300))}`))
    }, timeoutMs)
    socket.on('connect', () => socket.write(bytes))
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      const { responses } = parseResponses(data, { head })
      if (responses.length >= expect || responses.at(-1)?.streaming) finish(false)
    })
    socket.on('end', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') finish(true)
      else if (!settled) {
        settled = true
        clearTimeout(timer)
        reject(error)
      }
    })
  })
}

/** A keep-alive connection that sends requests one after another and reads each response. */
export class KeepAliveClient {
  private socket: Socket
  private data = Buffer.alloc(0)
  private waiters: (() => void)[] = []
  closed = false

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk])
      for (const wake of this.waiters.splice(0)) wake()
    })
    socket.on('close', () => {
      this.closed = true
      for (const wake of this.waiters.splice(0)) wake()
    })
    socket.on('error', () => {})
  }

  static open(port: number): Promise<KeepAliveClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new KeepAliveClient(socket)))
      socket.once('error', reject)
    })
  }

  /** Sends one request and resolves to its response (rejects when the connection closes first). */
  async send(bytes: string, timeoutMs = 10_000): Promise<RawResponse> {
    this.socket.write(bytes)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const { responses, rest } = parseResponses(this.data)
      if (responses.length > 1) throw new Error(`more than one response arrived for one request: ${JSON.stringify(responses.map((r) => r.body))}`)
      if (responses.length === 1) {
        this.data = Buffer.from(rest)
        return responses[0]!
      }
      if (this.closed) throw new Error(`the connection closed before the response; got ${JSON.stringify(this.data.toString('latin1').slice(0, 200))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`)
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          wake()
        })
      })
    }
  }

  close() {
    this.socket.destroy()
  }
}
