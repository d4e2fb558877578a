/**
 * Builds self-contained executables with `bun build --compile`.
 *   bun build/build.ts          the host binary → dist/xopcbot-<os>-<arch> + its line in dist/SHA256SUMS, then a smoke test
 *   bun build/build.ts --all    every release target of SPEC §11 + dist/SHA256SUMS
 * SHA256SUMS always matches what was just built, so install-scripts/install.sh takes a fresh build as it is; a
 * host build after --all keeps the other targets' lines.
 * Options: --outdir DIR (default dist/), --no-smoke (skip the smoke test, e.g. when a test runs the binary itself).
 * The version is inlined from package.json by the bundler; .env and bunfig.toml are not read at run time.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { recordChecksums } from './checksums'
import { smoke } from './smoke'
import { openSync, readSync, closeSync } from 'node:fs'
import { binaryFormat, expectedFormat, hostFile, TARGETS } from './targets'

const ROOT = resolve(import.meta.dir, '..')
const outdirIndex = process.argv.indexOf('--outdir')
const DIST = outdirIndex > 0 && process.argv[outdirIndex + 1] ? resolve(process.argv[outdirIndex + 1]!) : join(ROOT, 'dist')

function compile(outfile: string, target: string | null) {
  const args = [
    process.execPath,
    'build',
    join(ROOT, 'src/index.ts'),
    '--compile',
    '--minify',
    '--sourcemap=none',
    '--no-compile-autoload-dotenv',
    '--no-compile-autoload-bunfig',
    '--outfile',
    outfile,
  ]
  // Bytecode makes start-up faster but needs ESM (our entry uses top-level await) and has crashed
  // on some cross targets, so only the host build uses it, and with it what follows, which only the host's
  // smoke test can try:
  // - splitting puts each lazily imported command (and the server) in a chunk of its own inside the
  //   executable, loaded when it runs; without it the whole bundle is loaded at every start (~10 ms);
  // - a JIT 100 times more reluctant: a command runs most of its code once, and compiling it cost more than
  //   it saved (~4 ms of `gateway status`). The gateway sets the normal JIT once it serves (cli/gateway/index.ts).
  if (target) args.push(`--target=${target}`)
  else args.push('--bytecode', '--format=esm', '--splitting', '--compile-jit-policy=100')
  const result = Bun.spawnSync(args, { cwd: ROOT, stdout: 'inherit', stderr: 'inherit' })
  if (result.exitCode !== 0) throw new Error(`bun build failed for ${target ?? 'host'} (exit ${result.exitCode})`)
}

/** Every artifact is checked as far as this machine can: the right executable format and processor. */
function checkFormat(file: string, target: string) {
  const fd = openSync(file, 'r')
  const header = new Uint8Array(4096)
  readSync(fd, header, 0, header.length, 0)
  closeSync(fd)
  const found = binaryFormat(header)
  const expected = expectedFormat(target)
  if (!found || found.format !== expected.format || found.arch !== expected.arch) {
    throw new Error(`${file}: expected a ${expected.format} ${expected.arch} executable, found ${found ? `${found.format} ${found.arch}` : 'an unknown format'}`)
  }
  console.log(`format ok: ${file.split('/').pop()} is ${found.format} ${found.arch}`)
}

const all = process.argv.includes('--all')
mkdirSync(DIST, { recursive: true })
const host = hostFile()

if (all) {
  for (const file of readdirSync(DIST)) if (file.startsWith('xopcbot-') || file === 'SHA256SUMS') rmSync(join(DIST, file), { force: true })
  for (const { target, file } of TARGETS) {
    const outfile = join(DIST, file)
    if (file === host) compile(outfile, null)
    else compile(outfile, target)
    checkFormat(outfile, target)
  }
} else {
  compile(join(DIST, host), null)
}

if (!process.argv.includes('--no-smoke')) {
  try {
    await smoke(join(DIST, host))
  } catch (error) {
    console.error(`smoke test failed: ${(error as Error).message}`)
    process.exit(1)
  }
}

// Recorded after the smoke test: a binary that failed it is not entered into SHA256SUMS.
recordChecksums(DIST, all ? TARGETS.map((t) => t.file) : [host])
