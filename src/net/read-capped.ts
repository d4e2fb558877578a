/** Reads at most `maxBytes` of a body, counting as it streams; the rest is never read. */
export async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<{ bytes: Uint8Array; cut: boolean }> {
  if (!body) return { bytes: new Uint8Array(0), cut: false }
  const chunks: Uint8Array[] = []
  let size = 0
  let cut = false
  const reader = body.getReader()
  try {
    while (true) {
      const { done, value } = await reader.read()
      if (done) break
      if (size + value.byteLength > maxBytes) {
        chunks.push(value.subarray(0, maxBytes - size))
        size = maxBytes
        cut = true
        break
      }
      chunks.push(value)
      size += value.byteLength
    }
  } finally {
    if (cut) await reader.cancel().catch(() => {})
    reader.releaseLock()
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return { bytes, cut }
}
