const encoder = new TextEncoder()

/**
 * A Server-Sent Events response. `produce` writes events; writes after the client went away are dropped,
 * a comment every 15 s keeps proxies and idle timers from closing a stream while the model thinks, and the
 * stream is closed when `produce` ends, however it ends.
 */
export function sseResponse(produce: (write: (text: string) => void) => Promise<void>, headers: Record<string, string> = {}): Response {
  let keepAlive: ReturnType<typeof setInterval> | undefined
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      let open = true
      const write = (text: string) => {
        if (!open) return
        try {
          controller.enqueue(encoder.encode(text))
        } catch {
          open = false
        }
      }
      keepAlive = setInterval(() => write(': keep-alive\n\n'), 15_000)
      try {
        await produce(write)
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
    },
  })
  return new Response(stream, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers } })
}
