import { createHash } from 'node:crypto'

/** The SHA-256 of some bytes or text, as lower-case hex (the form of SHA256SUMS lines). */
export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')
