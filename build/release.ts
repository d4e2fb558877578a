/**
 * Lays out a release site for `xopcbot update` (SPEC §15) from the binaries in dist/:
 *   DIR/index.json                 {"latest": "<package.json version>", "versions": [every version in DIR, newest first]}
 *   DIR/v<version>/xopcbot-<os>-<arch>[.exe]   each release binary found in dist/
 *   DIR/v<version>/SHA256SUMS      one line per binary copied
 * Usage: npm run release -- --out DIR [--dist DIR]
 * It refuses (exit 1, nothing written) when dist/ holds no binary, or when dist/SHA256SUMS lacks a binary or
 * disagrees with it: a build that failed half-way is not published. index.json is written last, so the site
 * never lists a version whose files are not all there.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { compareVersions, parseChecksums, ReleaseIndex, ReleaseVersion, sortVersions } from '../src/ops/update'
import { replaceAtomic, writeFileAtomic } from '../src/util/atomic-write'
import { sha256Of } from './checksums'
import { TARGETS } from './targets'

const ROOT = resolve(import.meta.dir, '..')

class ReleaseError extends Error {}

export interface ReleaseResult {
  version: string
  dir: string
  files: string[]
  versions: string[]
}

/** Writes the release of `version` from `dist` into the site `out` (see the top of this file). */
export function release({ dist, out, version }: { dist: string; out: string; version: string }): ReleaseResult {
  if (!ReleaseVersion.safeParse(version).success) throw new ReleaseError(`package.json version ${JSON.stringify(version)} is not a version such as 1.2.3`)
  const known = new Set<string>(TARGETS.map((t) => t.file))
  const binaries = existsSync(dist) ? readdirSync(dist).filter((name) => known.has(name)).sort() : []
  if (binaries.length === 0) throw new ReleaseError(`${dist} holds no release binary (xopcbot-<os>-<arch>): run npm run build or npm run build:all first`)

  const sumsFile = join(dist, 'SHA256SUMS')
  if (!existsSync(sumsFile)) throw new ReleaseError(`${sumsFile} is missing: run npm run build or npm run build:all again`)
  const listed = parseChecksums(readFileSync(sumsFile, 'utf8'))
  const digests = new Map<string, string>()
  for (const name of binaries) {
    const expected = listed.get(name)
    if (!expected) throw new ReleaseError(`${sumsFile} has no line for ${name}: run the build again`)
    const actual = sha256Of(join(dist, name))
    if (actual !== expected) throw new ReleaseError(`${join(dist, name)} does not match ${sumsFile} (it is ${actual}, the file lists ${expected}): run the build again`)
    digests.set(name, actual)
  }

  // The index already there, if any: its versions are kept.
  const indexFile = join(out, 'index.json')
  let versions: string[] = []
  if (existsSync(indexFile)) {
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(indexFile, 'utf8'))
    } catch {
      throw new ReleaseError(`${indexFile} is not JSON; fix or remove it`)
    }
    const parsed = ReleaseIndex.safeParse(raw)
    if (!parsed.success) throw new ReleaseError(`${indexFile} is not a release index (${parsed.error.issues[0]!.path.join('.') || 'top level'}: ${parsed.error.issues[0]!.message}); fix or remove it`)
    versions = parsed.data.versions
  }

  const dir = join(out, `v${version}`)
  mkdirSync(dir, { recursive: true })
  // A release published again replaces its files; a binary of the earlier run that is not in dist/ now goes.
  for (const name of readdirSync(dir)) if (known.has(name) && !digests.has(name)) rmSync(join(dir, name), { force: true })
  for (const [name, digest] of digests) {
    const target = join(dir, name)
    replaceAtomic(target, (temp) => {
      copyFileSync(join(dist, name), temp)
      chmodSync(temp, 0o755)
      if (sha256Of(temp) !== digest) throw new ReleaseError(`the copy of ${name} in ${dir} does not match its checksum; is the disk full?`)
    })
  }
  writeFileAtomic(join(dir, 'SHA256SUMS'), [...digests].map(([name, digest]) => `${digest}  ${name}\n`).join(''))
  const all = sortVersions([...versions, version])
  writeFileAtomic(indexFile, `${JSON.stringify({ latest: version, versions: all }, null, 2)}\n`)
  return { version, dir, files: [...digests.keys()], versions: all }
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name)
  if (index < 0) return undefined
  const value = process.argv[index + 1]
  if (!value || value.startsWith('--')) {
    console.error(`${name} needs a value (usage: npm run release -- --out DIR [--dist DIR])`)
    process.exit(2)
  }
  return value
}

if (import.meta.main) {
  const out = option('--out')
  if (!out) {
    console.error('usage: npm run release -- --out DIR [--dist DIR]   (DIR: the folder served as update.baseUrl)')
    process.exit(2)
  }
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  try {
    const result = release({ dist: resolve(option('--dist') ?? join(ROOT, 'dist')), out: resolve(out), version })
    const newest = result.versions[0]!
    console.log(`released ${version}: ${result.dir} (${result.files.join(', ')} + SHA256SUMS)`)
    console.log(`index.json: latest ${version}; versions ${result.versions.join(', ')}`)
    if (compareVersions(newest, version) > 0) console.log(`note: ${newest} is newer than ${version}, which index.json now names as latest`)
  } catch (error) {
    if (!(error instanceof ReleaseError)) throw error
    console.error(`release refused: ${error.message}`)
    process.exit(1)
  }
}
