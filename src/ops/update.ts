import { createHash } from 'node:crypto'
import { chmodSync, closeSync, copyFileSync, existsSync, linkSync, openSync, readSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { z } from 'zod'
import { hostFile } from '../../build/targets'
import { CliError } from '../errors'
import { describeIssues } from '../validation'
import { RedirectRefused, outboundFetch } from '../net/outbound'
import { tempPathBeside } from '../util/atomic-write'

// The release side of `xopcbot update` (SPEC §15): the index and checksums of a release site, a verified
// download, and the swap of the installed binary with the one it replaces (kept as `<binary>.previous`).
// Restarting what runs it is the command's business (cli/update.ts).

/** Release versions: semver, which also keeps them safe as a path segment (`v<version>/`). */
export const VERSION_PATTERN = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/
export const ReleaseVersion = z.string().regex(VERSION_PATTERN, 'must be a version such as 1.2.3')

export const ReleaseIndex = z
  .object({ latest: ReleaseVersion, versions: z.array(ReleaseVersion).min(1, 'lists no version') })
  .refine((index) => index.versions.includes(index.latest), { message: 'latest is not one of versions', path: ['latest'] })
export type ReleaseIndex = z.infer<typeof ReleaseIndex>

/** -1, 0 or 1 as `a` is older than, the same as or newer than `b` (semver precedence). */
export const compareVersions = (a: string, b: string): -1 | 0 | 1 => Bun.semver.order(a, b)

/** Newest first, each once. */
export const sortVersions = (versions: Iterable<string>): string[] => [...new Set(versions)].sort((a, b) => compareVersions(b, a))

/** One `SHA256SUMS` line as `sha256sum` writes it (`<hex>  <name>`, or `<hex> *<name>` in binary mode). */
const SUM_LINE = /^([0-9a-fA-F]{64}) [ *]([^/\\]+)$/

/** The digests of a `SHA256SUMS` text by file name; lines that are not checksum lines are ignored. */
export function parseChecksums(text: string): Map<string, string> {
  const sums = new Map<string, string>()
  for (const line of text.split('\n')) {
    const match = SUM_LINE.exec(line.trim())
    if (match) sums.set(match[2]!, match[1]!.toLowerCase())
  }
  return sums
}


/**
 * The interpreter an ELF executable names (PT_INTERP), e.g. `/lib/ld-musl-x86_64.so.1`; null for other formats
 * or a static file. It tells a musl build from a glibc one, which process.platform does not.
 */
export function elfInterpreter(file: string): string | null {
  let fd: number | null = null
  try {
    fd = openSync(file, 'r')
    const header = Buffer.alloc(64)
    readSync(fd, header, 0, 64, 0)
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return null
    const phoff = Number(header.readBigUInt64LE(0x20))
    const entrySize = header.readUInt16LE(0x36)
    const count = header.readUInt16LE(0x38)
    const table = Buffer.alloc(entrySize * count)
    readSync(fd, table, 0, table.length, phoff)
    for (let i = 0; i < count; i++) {
      const entry = i * entrySize
      if (table.readUInt32LE(entry) !== 3) continue
      const size = Number(table.readBigUInt64LE(entry + 0x20))
      const text = Buffer.alloc(Math.min(size, 256))
      readSync(fd, text, 0, text.length, Number(table.readBigUInt64LE(entry + 0x08)))
      return text.toString('latin1').replace(/\0.*$/s, '')
    }
    return null
  } catch {
    return null
  } finally {
    if (fd !== null) closeSync(fd)
  }
}

/** The release file (build/targets.ts) for this machine: the running binary's own flavour (glibc or musl). */
export function platformBinaryName(execPath: string = process.execPath, platform = process.platform, arch = process.arch): string {
  const name = hostFile(platform, arch)
  return platform === 'linux' && elfInterpreter(execPath)?.includes('musl') ? `${name}-musl` : name
}

/** The base URL of the release site: $XOPCBOT_UPDATE_URL, else `update.baseUrl`; without a trailing slash. */
export function releaseBaseUrl(configured: string, env: Record<string, string | undefined> = process.env): string {
  const given = env.XOPCBOT_UPDATE_URL?.trim() || configured
  const source = env.XOPCBOT_UPDATE_URL?.trim() ? 'XOPCBOT_UPDATE_URL' : 'update.baseUrl'
  let url: URL
  try {
    url = new URL(given)
  } catch {
    throw new CliError(`${source}: not a URL: ${JSON.stringify(given)}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CliError(`${source}: must be an http(s) URL (got ${url.protocol})`)
  if (url.search || url.hash) throw new CliError(`${source}: must not have a query or fragment; the release files are found below it`)
  return url.href.replace(/\/+$/, '')
}

/** A URL as it may be printed: without user name or password. */
export function shownUrl(url: string): string {
  const parsed = new URL(url)
  parsed.username = ''
  parsed.password = ''
  return parsed.href
}

export interface Limits {
  maxBytes: number
  timeoutMs: number
}

/** What one index or SHA256SUMS may be; a binary (`BINARY_LIMITS`) may be far larger and take longer. */
export const SMALL_LIMITS: Limits = { maxBytes: 1024 * 1024, timeoutMs: 15_000 }
export const BINARY_LIMITS: Limits = { maxBytes: 512 * 1024 * 1024, timeoutMs: 10 * 60_000 }

/**
 * GETs `url` (no redirects: SPEC §7) and hands each chunk of the body to `chunk`, refusing a body over
 * `maxBytes` and anything that takes longer than `timeoutMs` in all.
 */
async function download(url: string, { maxBytes, timeoutMs }: Limits, chunk: (data: Uint8Array) => void): Promise<void> {
  const shown = shownUrl(url)
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    const response = await outboundFetch(url, { signal }, { target: shown })
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      throw new CliError(`Could not download ${shown}: HTTP ${response.status}${response.status === 404 ? ' (not found)' : ''}`)
    }
    const declared = Number(response.headers.get('content-length'))
    if (declared > maxBytes) {
      await response.body?.cancel().catch(() => {})
      throw new CliError(`Refused ${shown}: ${declared} bytes is more than the limit of ${maxBytes}`)
    }
    let received = 0
    for await (const data of response.body ?? []) {
      received += data.byteLength
      if (received > maxBytes) throw new CliError(`Refused ${shown}: more than the limit of ${maxBytes} bytes`)
      chunk(data)
    }
  } catch (error) {
    if (error instanceof CliError) throw error
    if (error instanceof RedirectRefused) throw new CliError(`Could not download ${shown}: the server answered HTTP ${error.status}, and redirects are not followed; set update.baseUrl to the final address`)
    if (signal.aborted) throw new CliError(`Could not download ${shown}: no complete answer within ${Math.round(timeoutMs / 1000)} s`)
    throw new CliError(`Could not download ${shown}: ${(error as Error).message}`)
  }
}

export async function downloadText(url: string, limits: Limits = SMALL_LIMITS): Promise<string> {
  const parts: Uint8Array[] = []
  await download(url, limits, (data) => parts.push(data))
  return Buffer.concat(parts).toString('utf8')
}

/** The release index of the site at `base`, validated. */
export async function fetchIndex(base: string): Promise<ReleaseIndex> {
  const url = `${base}/index.json`
  const text = await downloadText(url).catch((error: Error) => {
    throw new CliError(`${error.message} (the release site is update.baseUrl in the config, or $XOPCBOT_UPDATE_URL)`)
  })
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new CliError(`${shownUrl(url)} is not JSON: is update.baseUrl the release site (the folder npm run release writes)?`)
  }
  const parsed = ReleaseIndex.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new CliError(`${shownUrl(url)} is not a release index: ${describeIssues([issue], issue.path.length ? [] : ['(top level)'], { input: raw }).join('; ')}`)
  }
  return parsed.data
}

/** Runs `<file> --version` and returns what it printed (trimmed); null if it did not run or exited non-zero. */
export async function versionOf(file: string, timeoutMs = 15_000): Promise<string | null> {
  try {
    const proc = Bun.spawn([file, '--version'], { stdin: 'ignore', stdout: 'pipe', stderr: 'ignore', env: { ...process.env, NO_COLOR: '1' } })
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited])
    clearTimeout(timer)
    return code === 0 ? out.trim() : null
  } catch {
    return null
  }
}

export interface Downloaded {
  /** the verified, executable file, beside the installed binary; install() renames it into place */
  temp: string
  sha256: string
  url: string
}

/**
 * Downloads release `version` of this machine's binary from `base` into a file beside `target`, and keeps it
 * only if its SHA-256 is the one the release's SHA256SUMS lists for it and `<file> --version` prints `version`.
 * Any failure removes the download and leaves `target` as it was.
 */
export async function downloadRelease(base: string, version: string, target: string, name: string = platformBinaryName()): Promise<Downloaded> {
  const folder = `${base}/v${version}`
  const sums = parseChecksums(await downloadText(`${folder}/SHA256SUMS`))
  const expected = sums.get(name)
  if (!expected) throw new CliError(`${shownUrl(`${folder}/SHA256SUMS`)} has no line for ${name}: nothing was downloaded or replaced`)

  const url = `${folder}/${name}`
  const temp = tempPathBeside(target)
  let fd: number
  try {
    fd = openSync(temp, 'wx', 0o600)
  } catch (error) {
    throw new CliError(`Cannot write beside ${target} (${(error as NodeJS.ErrnoException).code}): update needs to write in ${dirname(target)}; run it as the user who owns that folder`)
  }
  const hash = createHash('sha256')
  try {
    try {
      await download(url, BINARY_LIMITS, (data) => {
        hash.update(data)
        let written = 0
        while (written < data.byteLength) written += writeSync(fd, data, written)
      })
    } finally {
      closeSync(fd)
    }
    const sha256 = hash.digest('hex')
    if (sha256 !== expected) {
      throw new CliError(`Checksum mismatch for ${shownUrl(url)}: SHA256SUMS lists ${expected}, the download is ${sha256}. Nothing was replaced.`)
    }
    if (process.platform !== 'win32') chmodSync(temp, 0o755)
    const printed = await versionOf(temp)
    if (printed !== version) {
      throw new CliError(`The downloaded ${name} ${printed === null ? 'does not run here' : `reports version ${JSON.stringify(printed.slice(0, 100))}`}, not ${version}. Nothing was replaced.`)
    }
    return { temp, sha256, url }
  } catch (error) {
    rmSync(temp, { force: true })
    throw error
  }
}

export const previousPathOf = (target: string) => `${target}.previous`

/** A copy of `from` at a fresh temp name beside `besides`: a hard link where it can, else a byte copy. */
function duplicate(from: string, besides: string): string {
  const temp = tempPathBeside(besides)
  try {
    linkSync(from, temp)
  } catch {
    copyFileSync(from, temp)
  }
  return temp
}

/**
 * Puts the verified download in place of `target` atomically (a rename over it: the path always holds a
 * whole binary, the old or the new) and keeps what was there as `<target>.previous`. A process running
 * the old binary keeps running it.
 */
export function install(target: string, temp: string): void {
  const previous = previousPathOf(target)
  try {
    if (process.platform === 'win32') {
      // A running .exe cannot be replaced, but it can be renamed.
      rmSync(previous, { force: true })
      renameSync(target, previous)
      try {
        renameSync(temp, target)
      } catch (error) {
        renameSync(previous, target)
        throw error
      }
      return
    }
    const kept = duplicate(target, previous)
    try {
      renameSync(kept, previous)
    } catch (error) {
      rmSync(kept, { force: true })
      throw error
    }
    renameSync(temp, target)
  } catch (error) {
    rmSync(temp, { force: true })
    throw new CliError(`Could not replace ${target} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); it was left as it was`)
  }
}

/**
 * Exchanges `target` and `<target>.previous` (for `update --rollback`: rolling back twice goes forward again).
 * Each path holds a whole binary at every moment.
 */
export function swapWithPrevious(target: string): void {
  const previous = previousPathOf(target)
  if (!existsSync(previous)) throw new CliError(`There is no previous version to go back to: ${previous} does not exist`)
  if (process.platform === 'win32') {
    const aside = tempPathBeside(target)
    renameSync(target, aside)
    renameSync(previous, target)
    renameSync(aside, previous)
    return
  }
  const current = duplicate(target, target)
  try {
    renameSync(previous, target)
    renameSync(current, previous)
  } catch (error) {
    rmSync(current, { force: true })
    throw new CliError(`Could not exchange ${target} and ${basename(previous)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
}

/** Puts `<target>.previous` back in place of `target` (an update that did not come up); the failed one is dropped. */
export function restorePrevious(target: string): void {
  const previous = previousPathOf(target)
  if (process.platform === 'win32') rmSync(target, { force: true })
  renameSync(previous, target)
}

/** The binary that `update` replaces: the running executable, symlinks resolved. */
export function installedBinary(execPath: string = process.execPath): string {
  return realpathSync(execPath)
}

/** Whether two paths name one file (symlinks resolved); false when either is missing. */
export function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return false
  }
}
