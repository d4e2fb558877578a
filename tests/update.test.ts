import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Server } from 'bun'
import { sha256Of } from '../build/checksums'
import { hostFile } from '../build/targets'
import { platformBinaryName } from '../src/ops/update'
import { buildBinary, freePort, fromSource, homeWithConfig, lockOf, ROOT, runCli, startGateway, tempHome, type RunningGateway } from './helpers/gateway'
import { json } from './helpers/http'
import { startUserManager } from './helpers/systemd'
import { waitFor } from './helpers/wait'

// `xopcbot update` end to end: two real compiled binaries (this checkout as version A, and a copy of it whose
// package.json says B), release sites laid out by `npm run release` and served over HTTP on 127.0.0.1, and a
// gateway of the installed binary that the update restarts.

const A = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const bump = (version: string, by: number) => version.replace(/^(\d+)\.(\d+)\.(\d+).*$/, (_, major, minor, patch) => `${major}.${minor}.${Number(patch) + by}`)
const B = bump(A, 1)
const CRASHING = bump(A, 2)

const temps: string[] = []
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}

let binaryA = ''
let binaryB = ''
let tree = ''
let name = ''
const sites = temp('xopcbot-sites-')
let server: Server<undefined>
// The service path needs a systemd user manager (a private one, in its own HOME); elsewhere it is skipped visibly.
const serviceHome = tempHome()
temps.push(serviceHome)
const manager = await startUserManager(serviceHome)
const noSystemd = 'skip' in manager ? manager.skip : null
if (noSystemd) console.log(`skipped: update of an installed systemd service (${noSystemd})`)
const siteUrl = (site: string) => `http://127.0.0.1:${server.port}/${site}`

/** `npm run release -- --out DIR --dist DIST` of the checkout at `root`. */
const release = (root: string, out: string, dist: string) => Bun.spawnSync([process.execPath, join(root, 'build/release.ts'), '--out', out, '--dist', dist], { cwd: root, stdout: 'pipe', stderr: 'pipe' })

/** A site serving version `version` whose binary is `content` and whose SHA256SUMS is `sums` (default: right). */
function writeSite(site: string, version: string, content: Uint8Array | string, sums?: string) {
  const dir = join(sites, site, `v${version}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, name), content, { mode: 0o755 })
  writeFileSync(join(dir, 'SHA256SUMS'), sums ?? `${sha256Of(join(dir, name))}  ${name}\n`)
  writeFileSync(join(sites, site, 'index.json'), JSON.stringify({ latest: version, versions: [version, A] }))
}

beforeAll(() => {
  binaryA = buildBinary()[0]!
  temps.push(dirname(binaryA))
  name = platformBinaryName(binaryA)
  // Version B: the same source with another version in package.json, built by its own copy of the build script.
  tree = temp('xopcbot-tree-')
  for (const part of ['src', 'build']) cpSync(join(ROOT, part), join(tree, part), { recursive: true })
  copyFileSync(join(ROOT, 'tsconfig.json'), join(tree, 'tsconfig.json'))
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  writeFileSync(join(tree, 'package.json'), JSON.stringify({ ...pkg, version: B }))
  const build = Bun.spawnSync([process.execPath, join(tree, 'build/build.ts'), '--no-smoke'], { cwd: tree, stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(`build of ${B} failed: ${build.stderr.toString()}`)
  binaryB = join(tree, 'dist', hostFile())

  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(request) {
      const path = decodeURIComponent(new URL(request.url).pathname)
      if (path.startsWith('/redirect/')) return new Response(null, { status: 302, headers: { location: `${siteUrl('good')}/index.json` } })
      const file = join(sites, path)
      if (path.includes('..') || !existsSync(file) || statSync(file).isDirectory()) return new Response('not found', { status: 404 })
      return new Response(Bun.file(file))
    },
  })

  // The real site: A released from this checkout, then B from its copy (`npm run release` in each).
  for (const [root, dist] of [[ROOT, dirname(binaryA)], [tree, dirname(binaryB)]] as const) {
    const result = release(root, join(sites, 'good'), dist)
    if (result.exitCode !== 0) throw new Error(`release failed: ${result.stderr.toString()}`)
  }
  // A download that does not match its SHA256SUMS (cut short), and a SHA256SUMS without this machine's line.
  const bytes = readFileSync(binaryB)
  writeSite('corrupt', B, bytes.subarray(0, bytes.length >> 1), `${sha256Of(binaryB)}  ${name}\n`)
  writeSite('no-line', B, 'never downloaded', `${sha256Of(binaryB)}  xopcbot-plan9-mips\n`)
  // A release that passes every check before the swap — its checksum, `--version` — but cannot start.
  writeSite('crash', CRASHING, `#!/bin/sh\nif [ "$1" = "--version" ]; then echo ${CRASHING}; exit 0; fi\necho "❌ boom: this build cannot start" >&2\nexit 1\n`)
}, 120_000)

afterAll(async () => {
  if (!('skip' in manager)) await manager.stop()
  server?.stop(true)
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
})

describe('npm run release', () => {
  test('lays out index.json (versions kept, newest first) and v<version>/ with the binaries and their SHA256SUMS', () => {
    const site = join(sites, 'good')
    expect(JSON.parse(readFileSync(join(site, 'index.json'), 'utf8'))).toEqual({ latest: B, versions: [B, A] })
    for (const [version, binary] of [[A, binaryA], [B, binaryB]] as const) {
      expect(readdirSync(join(site, `v${version}`)).sort()).toEqual(['SHA256SUMS', hostFile()])
      expect(readFileSync(join(site, `v${version}`, 'SHA256SUMS'), 'utf8')).toBe(`${sha256Of(binary)}  ${hostFile()}\n`)
      expect(sha256Of(join(site, `v${version}`, hostFile()))).toBe(sha256Of(binary))
    }
  })

  test('refuses a dist/ without a binary, or whose SHA256SUMS does not match, and writes nothing', () => {
    const out = join(temp('xopcbot-rel-'), 'site')
    const empty = temp('xopcbot-dist-')
    let result = release(ROOT, out, empty)
    expect(result.exitCode).toBe(1)
    expect(result.stderr.toString()).toContain('holds no release binary')

    const stale = temp('xopcbot-dist-')
    writeFileSync(join(stale, hostFile()), 'a binary')
    writeFileSync(join(stale, 'SHA256SUMS'), `${'0'.repeat(64)}  ${hostFile()}\n`)
    result = release(ROOT, out, stale)
    expect(result.exitCode).toBe(1)
    expect(result.stderr.toString()).toContain(`${hostFile()} does not match`)
    expect(existsSync(out)).toBe(false)
  })
})

describe('xopcbot update', () => {
  const home = tempHome()
  temps.push(home)
  const installed = join(home, 'bin', 'xopcbot')
  let gateway: RunningGateway
  const update = (args: string[], site: string) => runCli(['update', ...args], { home, runner: [installed], env: { XOPCBOT_UPDATE_URL: siteUrl(site) }, timeoutMs: 60_000 })
  const served = async () => (await json(await fetch(`${gateway.url}/health`))).version
  const leftovers = () => readdirSync(dirname(installed)).filter((f) => f.endsWith('.tmp'))

  beforeAll(async () => {
    mkdirSync(dirname(installed), { recursive: true })
    copyFileSync(binaryA, installed)
    chmodSync(installed, 0o755)
    gateway = await startGateway({ home, runner: [installed] })
  }, 30_000)
  afterAll(async () => {
    await runCli(['gateway', 'stop'], { home, runner: [installed] })
  })

  test('from source it refuses: the checkout is updated instead', async () => {
    const result = await runCli(['update'], { home, runner: fromSource, env: { XOPCBOT_UPDATE_URL: siteUrl('good') } })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('update the checkout instead')
  })

  test('the release site is checked: update.baseUrl in the config (exit 78 naming it), XOPCBOT_UPDATE_URL over it', async () => {
    const configHome = homeWithConfig({ update: { baseUrl: 'ftp://example.com/releases' } })
    temps.push(configHome)
    const bad = await runCli(['update', '--check'], { home: configHome })
    expect(bad.code).toBe(78)
    expect(bad.stderr).toContain('update.baseUrl: must be an http(s) URL')
    const overridden = await runCli(['update', '--check', '--json'], { home: configHome, env: { XOPCBOT_UPDATE_URL: siteUrl('good') } })
    expect(overridden.code).toBe(0)
    expect(JSON.parse(overridden.stdout).latest).toBe(B)
    const badEnv = await runCli(['update', '--check'], { home: configHome, env: { XOPCBOT_UPDATE_URL: 'file:///etc' } })
    expect(badEnv.code).toBe(1)
    expect(badEnv.stderr).toContain('XOPCBOT_UPDATE_URL: must be an http(s) URL')
  })

  test('--check compares this version with the latest release', async () => {
    const text = await update(['--check'], 'good')
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`Current version: ${A}`)
    expect(text.stdout).toContain(`Latest version: ${B} (${siteUrl('good')}/index.json)`)
    expect(text.stdout).toContain('An update is available')
    const machine = await update(['--check', '--json'], 'good')
    expect(JSON.parse(machine.stdout)).toEqual({ status: 'ok', current: A, latest: B, update_available: true, versions: [B, A], base_url: siteUrl('good') })
  })

  test('a redirect, an unlisted version and a site without a line for this machine are refused', async () => {
    const redirect = await update(['--check'], 'redirect')
    expect(redirect.code).toBe(1)
    expect(redirect.stderr).toContain('HTTP 302, and redirects are not followed')
    const unlisted = await update(['--version', '9.9.9'], 'good')
    expect(unlisted.code).toBe(1)
    expect(unlisted.stderr).toContain(`Version 9.9.9 is not in the release index`)
    // A huge index (up to the 1 MiB limit): the error names the newest few, not all of them.
    mkdirSync(join(sites, 'huge'), { recursive: true })
    const many = Array.from({ length: 50_000 }, (_, i) => `0.0.${i}`)
    writeFileSync(join(sites, 'huge', 'index.json'), JSON.stringify({ latest: '0.0.49999', versions: many }))
    const huge = await update(['--version', '9.9.9'], 'huge')
    expect(huge.code).toBe(1)
    expect(huge.stderr).toContain('it lists 0.0.49999, 0.0.49998, 0.0.49997, 0.0.49996, 0.0.49995, 0.0.49994, 0.0.49993, 0.0.49992, 0.0.49991, 0.0.49990, … (50000 in all)')
    expect(huge.stderr.length).toBeLessThan(1000)
    // Versions are path segments (v<version>/): one that is not a version is refused, from the index or the flag.
    mkdirSync(join(sites, 'dotdot'), { recursive: true })
    writeFileSync(join(sites, 'dotdot', 'index.json'), JSON.stringify({ latest: '../../x', versions: ['../../x'] }))
    const dotdot = await update([], 'dotdot')
    expect(dotdot.code).toBe(1)
    expect(dotdot.stderr).toContain('is not a release index: latest: must be a version such as 1.2.3')
    const flag = await update(['--version', '../../x'], 'good')
    expect(flag.code).toBe(2)
    expect(flag.stderr).toContain('must be a version such as 1.2.3')
    const noLine = await update([], 'no-line')
    expect(noLine.code).toBe(1)
    expect(noLine.stderr).toContain(`has no line for ${name}`)
    expect(sha256Of(installed)).toBe(sha256Of(binaryA))
  })

  test(`updates ${A} → ${B}: verified, swapped, the gateway restarted and serving ${B}; the old binary kept`, async () => {
    const before = lockOf(home)!.pid
    const result = await update([], 'good')
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('✓ Checksum verified')
    expect(result.stdout).toContain(`✅ Updated xopcbot ${A} → ${B}; the gateway serves ${B}`)
    expect(await served()).toBe(B)
    expect(lockOf(home)!.pid).not.toBe(before)
    expect(sha256Of(installed)).toBe(sha256Of(binaryB))
    expect(sha256Of(`${installed}.previous`)).toBe(sha256Of(binaryA))
    expect(statSync(installed).mode & 0o777).toBe(0o755)
    expect(leftovers()).toEqual([])

    const again = await runCli(['update'], { home, runner: [installed], env: { XOPCBOT_UPDATE_URL: siteUrl('good') } })
    expect(again.code).toBe(0)
    expect(again.stdout).toContain(`✅ xopcbot ${B} is already up to date`)
  }, 60_000)

  test(`a site whose latest went back to ${A} does not downgrade ${B} without --version`, async () => {
    mkdirSync(join(sites, 'went-back'), { recursive: true })
    cpSync(join(sites, 'good', `v${A}`), join(sites, 'went-back', `v${A}`), { recursive: true })
    writeFileSync(join(sites, 'went-back', 'index.json'), JSON.stringify({ latest: A, versions: [B, A] }))
    const before = lockOf(home)!.pid
    const result = await update([], 'went-back')
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`xopcbot ${B} is newer than the latest release (${A}): nothing was changed`)
    expect(sha256Of(installed)).toBe(sha256Of(binaryB))
    expect(lockOf(home)!.pid).toBe(before)
    expect(await served()).toBe(B)
  }, 30_000)

  test(`--rollback goes back to ${A}, which serves again; a second one goes forward to ${B}`, async () => {
    const result = await update(['--rollback', '--json'], 'good')
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report).toMatchObject({ status: 'ok', action: 'rolled-back', from: B, to: A, restarted: 'gateway', pid: lockOf(home)!.pid })
    expect(await served()).toBe(A)
    expect(sha256Of(installed)).toBe(sha256Of(binaryA))
    expect(sha256Of(`${installed}.previous`)).toBe(sha256Of(binaryB))

    const forward = await update(['--rollback'], 'good')
    expect(forward.code).toBe(0)
    expect(forward.stdout).toContain(`✅ Rolled back xopcbot ${A} → ${B}; the gateway serves ${B}`)
    expect(await served()).toBe(B)
    expect(sha256Of(`${installed}.previous`)).toBe(sha256Of(binaryA))
  }, 60_000)

  test(`--version ${A} installs an older listed release, and says it is a downgrade`, async () => {
    const result = await update(['--version', A], 'good')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`⚠️ ${A} is older than ${B}: this is a downgrade.`)
    expect(result.stdout).toContain(`✅ Downgraded xopcbot ${B} → ${A}; the gateway serves ${A}`)
    expect(await served()).toBe(A)
    expect(sha256Of(installed)).toBe(sha256Of(binaryA))
    expect(sha256Of(`${installed}.previous`)).toBe(sha256Of(binaryB))
  }, 60_000)

  test('a download that does not match SHA256SUMS is refused: nothing replaced, the gateway untouched', async () => {
    const before = lockOf(home)!.pid
    const result = await update([], 'corrupt')
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`Checksum mismatch for ${siteUrl('corrupt')}/v${B}/${name}`)
    expect(result.stderr).toContain('Nothing was replaced')
    expect(sha256Of(installed)).toBe(sha256Of(binaryA))
    expect(sha256Of(`${installed}.previous`)).toBe(sha256Of(binaryB))
    expect(lockOf(home)!.pid).toBe(before)
    expect(await served()).toBe(A)
    expect(leftovers()).toEqual([])
  }, 30_000)

  test(`a release that cannot start is rolled back by itself: ${A} serves again, exit 1 with what happened`, async () => {
    const result = await update([], 'crash')
    expect(result.code).toBe(1)
    expect(result.stdout).toContain(`⚠️ ${CRASHING} did not come up`)
    expect(result.stderr).toContain(`The update to ${CRASHING} failed and was undone: the new gateway`)
    expect(result.stderr).toContain('exited with code 1 at start: boom: this build cannot start')
    expect(result.stderr).toContain(`${A} is installed again and serves`)
    await waitFor(async () => (await served()) === A, { what: `${A} on /health` })
    expect(sha256Of(installed)).toBe(sha256Of(binaryA))
    expect(leftovers()).toEqual([])
  }, 60_000)
})

describe('xopcbot update of an installed service (systemd user manager)', () => {
  const installed = join(serviceHome, '.xopcbot', 'bin', 'xopcbot')
  const env = () => (manager as { env: Record<string, string> }).env
  const cli = async (command: string, args: string[], site = 'good') => {
    const proc = Bun.spawn([command, ...args], { env: { ...env(), XOPCBOT_UPDATE_URL: siteUrl(site) }, stdout: 'pipe', stderr: 'pipe' })
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000)
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    clearTimeout(timer)
    return { stdout, stderr, code }
  }
  let port = 0
  const served = async () => (await json(await fetch(`http://127.0.0.1:${port}/health`))).version

  afterAll(async () => {
    if (noSystemd === null && existsSync(installed)) await cli(installed, ['gateway', 'uninstall'])
  })

  test.skipIf(noSystemd !== null)(`the service is restarted on ${B}; then a release that cannot start is undone and ${B} runs under the service again`, async () => {
    const install = await cli(binaryA, ['gateway', 'install', '--runtime', 'binary', '--host', '127.0.0.1', '--port', String((port = await freePort()))])
    expect(install.code).toBe(0)
    expect(await served()).toBe(A)

    const result = await cli(installed, ['update'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Restarting the service xopcbot-gateway')
    expect(result.stdout).toContain(`✅ Updated xopcbot ${A} → ${B}; the service serves ${B}`)
    expect(await served()).toBe(B)
    expect(JSON.parse((await cli(installed, ['gateway', 'service-status', '--json'])).stdout)).toMatchObject({ state: 'running' })

    const crash = await cli(installed, ['update'], 'crash')
    expect(crash.code).toBe(1)
    // systemd reports the crash either to the start job (Type=exec) or as the restart that follows it.
    expect(crash.stderr).toMatch(new RegExp(`The update to ${CRASHING.replace(/\./g, '\\.')} failed and was undone: .*xopcbot-gateway`))
    expect(crash.stderr).toContain(`${B} is installed again and serves`)
    expect(await served()).toBe(B)
    expect(sha256Of(installed)).toBe(sha256Of(binaryB))
  }, 60_000)
})
