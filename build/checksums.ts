import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../src/util/atomic-write'

/** One `SHA256SUMS` line, as `sha256sum` writes it (`<hex>  <name>`) or in binary mode (`<hex> *<name>`). */
const LINE = /^([0-9a-f]{64}) [ *]([^/\\]+)$/

export function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

/**
 * The text of a `SHA256SUMS` after a build: the digests of what was just built, plus the lines of an earlier
 * build for other files that are still there (a single-target build after `build:all` keeps the other
 * targets). Lines for files that are gone, and lines that are not checksum lines, are dropped; sorted by name.
 */
export function mergeChecksums(previous: string, built: Record<string, string>, stillThere: (name: string) => boolean): string {
  const digests = new Map<string, string>()
  for (const line of previous.split('\n')) {
    const match = LINE.exec(line.trim())
    if (match && stillThere(match[2]!)) digests.set(match[2]!, match[1]!)
  }
  for (const [name, digest] of Object.entries(built)) digests.set(name, digest)
  const names = [...digests.keys()].sort()
  return names.map((name) => `${digests.get(name)}  ${name}\n`).join('')
}

/** Records the digests of `files` (names in `dir`) in `dir/SHA256SUMS`, replaced atomically. */
export function recordChecksums(dir: string, files: readonly string[]): void {
  const sums = join(dir, 'SHA256SUMS')
  const previous = existsSync(sums) ? readFileSync(sums, 'utf8') : ''
  const built = Object.fromEntries(files.map((name) => [name, sha256Of(join(dir, name))]))
  const text = mergeChecksums(previous, built, (name) => existsSync(join(dir, name)))
  writeFileAtomic(sums, text)
  console.log(`wrote ${sums}: ${files.join(', ')} (${text.split('\n').length - 1} in all)`)
}
