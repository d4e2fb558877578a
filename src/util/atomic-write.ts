import { randomBytes } from 'node:crypto'
import { renameSync, rmSync, writeFileSync } from 'node:fs'

/** A temp name beside `path` (same directory, so a rename is atomic), unique per process and call. */
export function tempPathBeside(path: string): string {
  return `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
}

/**
 * Replaces `path` atomically: `write` fills a fresh temp file beside it (see tempPathBeside), which is then
 * renamed into place. Readers see the old file or the new one, never a part; if anything fails, the temp file
 * is removed and `path` is left as it was.
 */
export function replaceAtomic<T>(path: string, write: (temp: string) => T): T {
  const temp = tempPathBeside(path)
  try {
    const result = write(temp)
    renameSync(temp, path)
    return result
  } catch (error) {
    // EEXIST: the temp name was taken (by another writer), so the file there is not ours to remove.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') rmSync(temp, { force: true })
    throw error
  }
}

/**
 * Writes `data` to `path` atomically (see replaceAtomic). The temp file is created exclusively (`wx`) with
 * `mode` (before the umask; default 0666 like writeFileSync), so the new file has that mode from its first byte.
 * Not fsynced: none of our callers needs it to survive a power loss, only never to be seen half-written.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, { mode }: { mode?: number } = {}): void {
  replaceAtomic(path, (temp) => writeFileSync(temp, data, { mode: mode ?? 0o666, flag: 'wx' }))
}
