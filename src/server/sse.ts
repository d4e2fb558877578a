const encoder = new TextEncoder()

/** Events written but not yet read by the client, at most: a reader that falls this far behind is cut off. */
const MAX_BEHIND = 10_000

/**
 * A Server-Sent Events response. `produce` writes events; writes after the client went away are dropped (write
 * returns false from then on), a comment every 15 s keeps proxies and idle timers from closing a stream while the
 * model thinks, and the stream is closed when `produce` ends, however it ends. A client that stops reading is
 * cut off after MAX_BEHIND events instead of piling them up in memory.
 */
export function sseResponse(produce: (write: (text: string) => boolean, gone: AbortSignal) => Promise<void>, headers: Record<string, string> = {}): Response {
  let keepAlive: ReturnType<typeof setInterval> | undefined
  // Aborted when the client goes away or is cut off: a producer that waits for events can stop waiting.
  const gone = new AbortController()
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      let open = true
      const write = (text: string) => {
        if (!open) return false
        try {
          if ((controller.desiredSize ?? 0) < -MAX_BEHIND) throw new Error('the client stopped reading')
          controller.enqueue(encoder.encode(text))
        } catch (error) {
          open = false
          gone.abort()
          try {
            controller.error(error)
          } catch {}
        }
        return open
      }
      keepAlive = setInterval(() => write(': keep-alive\n\n'), 15_000)
      try {
        await produce(write, gone.signal)
      } finally {
        clearInterval(keepAlive)
        open = false
        try {
          controller.close()
        } catch {}
      }
    },
    cancel() {
      clearInterval(keepAlive)
      gone.abort()
    },
  })
  return new Response(stream, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers } })
}
