import { sha256 } from '../util/hash'
import { constants as bufferConstants } from 'node:buffer'
import { gunzipSync } from 'node:zlib'
import { z } from 'zod'
import { DataError } from '../errors'
import { describeIssues, formatPath } from '../validation'
import { isReferenceOnly, isSecretKey } from '../config/secrets'

/**
 * The backup archive: a tar.gz holding `manifest.json`, `SHA256SUMS` (as `sha256sum -c` reads it) and the files
 * the manifest lists — the database snapshot `xopcbot.db` and, when there was one, `config.json`. Reading one
 * back verifies everything before the caller touches anything.
 */

export const FORMAT = 'xopcbot-backup'
export const FORMAT_VERSION = 1
export const DATABASE_FILE = 'xopcbot.db'
export const CONFIG_FILE = 'config.json'
const MANIFEST_FILE = 'manifest.json'
const SUMS_FILE = 'SHA256SUMS'

/**
 * What replaces a secret in a backup made without `--include-secrets`. It is written like a variable reference
 * that no environment can satisfy, so a config restored with it fails to load and names the key (a plain word
 * would load: an API token of "[REDACTED]" is one anybody can guess).
 */
export const SECRET_PLACEHOLDER = '${secret-not-in-backup}'

/**
 * The most an archive may unpack to: 200 times its own size, and never less than 512 MiB. A database snapshot
 * compresses far less than that; a gzip bomb (a few MB that unpack to many GB) is refused before it fills memory.
 */
export const unpackLimit = (archiveBytes: number) => Math.min(Math.max(512 * 1024 * 1024, archiveBytes * 200), bufferConstants.MAX_LENGTH)

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/)
/** Text restore prints: a terminal must not be sent escape sequences from a file someone else may have written. */
const Printable = z.string().max(255).regex(/^[^\p{Cc}]*$/u, 'must not hold control characters')
export const ManifestFile = z.object({ name: z.enum([DATABASE_FILE, CONFIG_FILE]), size: z.int().min(0), sha256: Sha256 })
export const Manifest = z.object({
  format: z.literal(FORMAT),
  format_version: z.int().min(1),
  xopcbot_version: Printable,
  created_at: Printable,
  hostname: Printable,
  secrets_included: z.boolean(),
  /** the config keys (dotted paths) whose values were replaced by SECRET_PLACEHOLDER */
  secrets_removed: z.array(z.string()),
  /** `PRAGMA user_version` of the database: how many migrations it has */
  schema_version: z.int().min(0),
  files: z.array(ManifestFile),
})
export type Manifest = z.infer<typeof Manifest>


/** The archive's entries: the manifest, its checksums, and the files (name → bytes). */
export function archiveEntries(manifest: Manifest, files: Record<string, Uint8Array>): Record<string, Uint8Array | string> {
  const manifestText = JSON.stringify(manifest, null, 2) + '\n'
  const sums = [...manifest.files.map((f) => [f.sha256, f.name]), [sha256(manifestText), MANIFEST_FILE]].map(([hash, name]) => `${hash}  ${name}\n`).join('')
  return { [MANIFEST_FILE]: manifestText, [SUMS_FILE]: sums, ...files }
}

/** A verified backup, held in memory. */
export interface VerifiedBackup {
  manifest: Manifest
  database: Uint8Array
  /** the config file's text, or null when the backup has none */
  config: string | null
}

/**
 * Reads and verifies a backup archive: a readable tar.gz (gzip's own CRC catches a flipped byte) within unpackLimit, a manifest of
 * this format, a checksum line for the manifest and for every file that matches, the sizes and SHA-256 of every
 * file, nothing else in it, and a config that is a JSON object. Any failure is a DataError naming `file`.
 */
export async function verifyBackup(file: string, bytes: Uint8Array): Promise<VerifiedBackup> {
  const refuse = (why: string): never => {
    throw new DataError(`${file} is not a usable xopcbot backup: ${why}. Nothing was changed.`)
  }
  const limit = unpackLimit(bytes.length)
  let tar: Uint8Array
  try {
    tar = gunzipSync(bytes, { maxOutputLength: limit })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return refuse(`it unpacks to more than ${limit} bytes, far more than a backup of its size can hold`)
    return refuse(`it cannot be read as a tar.gz archive (${(error as Error).message})`)
  }
  let entries: Map<string, File>
  try {
    entries = await new Bun.Archive(tar).files()
  } catch (error) {
    return refuse(`it cannot be read as a tar.gz archive (${(error as Error).message})`)
  }
  const read = async (name: string) => new Uint8Array(await entries.get(name)!.arrayBuffer())
  if (!entries.has(MANIFEST_FILE)) refuse(`it has no ${MANIFEST_FILE}`)
  const manifestBytes = await read(MANIFEST_FILE)
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder().decode(manifestBytes))
  } catch {
    refuse(`its ${MANIFEST_FILE} is not JSON`)
  }
  const format = (raw as { format?: unknown; format_version?: unknown } | null) ?? {}
  if (format.format === FORMAT && typeof format.format_version === 'number' && format.format_version > FORMAT_VERSION) {
    refuse(`it was written in backup format ${format.format_version} by a newer xopcbot (this one reads format ${FORMAT_VERSION}); upgrade xopcbot first`)
  }
  const parsed = Manifest.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    return refuse(`its ${MANIFEST_FILE} is not an xopcbot backup manifest (${describeIssues([issue], issue.path.length ? [] : ['manifest'], { input: raw }).join('; ')})`)
  }
  const manifest = parsed.data

  if (!entries.has(SUMS_FILE)) refuse(`it has no ${SUMS_FILE}`)
  const sums = new Map<string, string>()
  for (const line of new TextDecoder().decode(await read(SUMS_FILE)).split('\n')) {
    if (!line) continue
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
    if (!match) refuse(`its ${SUMS_FILE} has a malformed line`)
    sums.set(match![2]!, match![1]!)
  }
  if (sums.get(MANIFEST_FILE) !== sha256(manifestBytes)) refuse(`the checksum of ${MANIFEST_FILE} does not match`)

  const expected = new Set([MANIFEST_FILE, SUMS_FILE, ...manifest.files.map((f) => f.name)])
  for (const name of entries.keys()) if (!expected.has(name)) refuse(`it holds ${JSON.stringify(name)}, which its manifest does not list`)
  const contents = new Map<string, Uint8Array>()
  for (const entry of manifest.files) {
    if (!entries.has(entry.name)) refuse(`${entry.name} is missing`)
    const data = await read(entry.name)
    if (data.length !== entry.size) refuse(`${entry.name} has ${data.length} bytes, its manifest says ${entry.size}`)
    const hash = sha256(data)
    if (hash !== entry.sha256 || sums.get(entry.name) !== hash) refuse(`the checksum of ${entry.name} does not match`)
    contents.set(entry.name, data)
  }
  const database = contents.get(DATABASE_FILE) ?? refuse(`it has no ${DATABASE_FILE}`)
  const configBytes = contents.get(CONFIG_FILE)
  const config = configBytes ? new TextDecoder().decode(configBytes) : null
  if (config !== null && !isJsonObject(config)) refuse(`its ${CONFIG_FILE} is not a JSON object`)
  return { manifest, database, config }
}

function isJsonObject(text: string): boolean {
  try {
    const value = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value)
  } catch {
    return false
  }
}

// --- secrets -----------------------------------------------------------------------------------------------

/** Maps whose every value is a secret: HTTP headers (providers, MCP servers) and MCP servers' environments. */
const SECRET_MAPS: ReadonlyArray<ReadonlyArray<string>> = [
  ['providers', '*', 'headers'],
  ['mcp', 'servers', '*', 'headers'],
  ['mcp', 'servers', '*', 'env'],
]
const inSecretMap = (path: readonly PropertyKey[]) =>
  SECRET_MAPS.some((map) => path.length === map.length + 1 && map.every((part, i) => part === '*' || part === path[i]))

/**
 * A copy of the parsed config file with every secret replaced by SECRET_PLACEHOLDER, and the dotted paths of
 * those replaced. `${VAR}` references are kept.
 */
export function withoutSecrets(raw: Record<string, unknown>): { config: Record<string, unknown>; removed: string[] } {
  const removed: string[] = []
  const walk = (value: unknown, path: PropertyKey[], secret: boolean): unknown => {
    if (typeof value === 'string') {
      if (!secret || isReferenceOnly(value) || value === SECRET_PLACEHOLDER) return value
      removed.push(formatPath(path))
      return SECRET_PLACEHOLDER
    }
    if (Array.isArray(value)) return value.map((item, i) => walk(item, [...path, i], secret))
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {}
      for (const [key, item] of Object.entries(value)) {
        const at = [...path, key]
        out[key] = walk(item, at, secret || isSecretKey(key) || inSecretMap(at))
      }
      return out
    }
    return value
  }
  return { config: walk(raw, [], false) as Record<string, unknown>, removed }
}

/**
 * `restored` with each SECRET_PLACEHOLDER replaced by the value at the same place in `current` (when that is a
 * string and not a placeholder itself): `filled` are the paths taken over, `missing` those left as placeholders.
 */
export function fillSecrets(restored: Record<string, unknown>, current: Record<string, unknown> | null): { config: Record<string, unknown>; filled: string[]; missing: string[] } {
  const filled: string[] = []
  const missing: string[] = []
  const walk = (value: unknown, other: unknown, path: PropertyKey[]): unknown => {
    if (value === SECRET_PLACEHOLDER) {
      if (typeof other === 'string' && other !== SECRET_PLACEHOLDER) {
        filled.push(formatPath(path))
        return other
      }
      missing.push(formatPath(path))
      return value
    }
    const child = (key: string | number) => (other !== null && typeof other === 'object' ? (other as Record<string, unknown>)[key] : undefined)
    if (Array.isArray(value)) return value.map((item, i) => walk(item, child(i), [...path, i]))
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {}
      for (const [key, item] of Object.entries(value)) out[key] = walk(item, child(key), [...path, key])
      return out
    }
    return value
  }
  return { config: walk(restored, current, []) as Record<string, unknown>, filled, missing }
}
