import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mergeChecksums, sha256Of } from '../build/checksums'
import { binaryFormat, expectedFormat, hostFile, TARGETS } from '../build/targets'
import { childEnv, ROOT, tempHome } from './helpers/gateway'

const bytes = (size: number, write: (view: DataView, raw: Uint8Array) => void) => {
  const raw = new Uint8Array(size)
  write(new DataView(raw.buffer), raw)
  return raw
}

describe('release artifact checks', () => {
  test('this machine runs its own format', () => {
    const header = new Uint8Array(readFileSync(process.execPath).subarray(0, 4096))
    const expected = expectedFormat(hostFile().replace('xopcbot-', 'bun-'))
    expect(binaryFormat(header)).toEqual(expected)
  })

  test('ELF, Mach-O and PE headers of both processors are told apart', () => {
    const elf = (machine: number) => bytes(64, (v, r) => (r.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]), v.setUint16(18, machine, true)))
    const macho = (cpu: number) => bytes(64, (v) => (v.setUint32(0, 0xfeedfacf, true), v.setUint32(4, cpu, true)))
    const pe = (machine: number) => bytes(256, (v, r) => (r.set([0x4d, 0x5a]), v.setUint32(0x3c, 0x80, true), v.setUint32(0x80, 0x4550, true), v.setUint16(0x84, machine, true)))
    expect(binaryFormat(elf(0x3e))).toEqual({ format: 'ELF', arch: 'x64' })
    expect(binaryFormat(elf(0xb7))).toEqual({ format: 'ELF', arch: 'arm64' })
    expect(binaryFormat(macho(0x01000007))).toEqual({ format: 'Mach-O', arch: 'x64' })
    expect(binaryFormat(macho(0x0100000c))).toEqual({ format: 'Mach-O', arch: 'arm64' })
    expect(binaryFormat(pe(0x8664))).toEqual({ format: 'PE', arch: 'x64' })
    expect(binaryFormat(new TextEncoder().encode('#!/bin/sh\necho not a binary\n'))).toBeNull()
    expect(TARGETS.map((t) => expectedFormat(t.target))).toEqual([
      { format: 'ELF', arch: 'x64' },
      { format: 'ELF', arch: 'arm64' },
      { format: 'ELF', arch: 'x64' },
      { format: 'ELF', arch: 'arm64' },
      { format: 'Mach-O', arch: 'x64' },
      { format: 'Mach-O', arch: 'arm64' },
      { format: 'PE', arch: 'x64' },
    ])
  })
})

describe('SHA256SUMS', () => {
  const hex = (c: string) => c.repeat(64)

  test('a build replaces the lines of what it built and keeps the other targets that are still there', () => {
    const previous = [`${hex('a')}  xopcbot-linux-x64`, `${hex('b')}  xopcbot-darwin-arm64`, `${hex('c')} *xopcbot-windows-x64.exe`, 'not a checksum line', `${hex('d')}  ../escape`, ''].join('\n')
    const there = new Set(['xopcbot-linux-x64', 'xopcbot-darwin-arm64'])
    expect(mergeChecksums(previous, { 'xopcbot-linux-x64': hex('e') }, (name) => there.has(name))).toBe(`${hex('b')}  xopcbot-darwin-arm64\n${hex('e')}  xopcbot-linux-x64\n`)
    expect(mergeChecksums('', { 'xopcbot-linux-x64': hex('e') }, () => false)).toBe(`${hex('e')}  xopcbot-linux-x64\n`)
  })
})

// `npm run build` and then install-scripts/install.sh on its output, as the README says (one build for all).
describe('a host build and the install script', () => {
  // Each holds a copy of a ~100 MB binary: removed afterwards.
  const dirs: string[] = []
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    dirs.push(dir)
    return dir
  }
  const outdir = tempDir('xopcbot-build-')
  const host = hostFile()
  const binary = join(outdir, host)
  const script = join(ROOT, 'install-scripts/install.sh')
  const other = 'xopcbot-darwin-arm64'
  const home = tempHome()

  beforeAll(() => {
    // What an earlier `build:all` left: another target's binary with its line, and a stale line for the host's.
    writeFileSync(join(outdir, other), 'another target')
    writeFileSync(join(outdir, 'SHA256SUMS'), `${'0'.repeat(64)}  ${host}\n${sha256Of(join(outdir, other))}  ${other}\n`)
    const build = Bun.spawnSync([process.execPath, join(ROOT, 'build/build.ts'), '--outdir', outdir, '--no-smoke'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
    if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`)
  }, 120_000)
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  const install = (args: string[]) => {
    const run = Bun.spawnSync(['sh', script, ...args], { env: childEnv(home, { XOPCBOT_HOME: join(home, '.xopcbot') }), stdout: 'pipe', stderr: 'pipe' })
    return { code: run.exitCode, stdout: run.stdout.toString(), stderr: run.stderr.toString() }
  }

  test('the build writes SHA256SUMS with the digest of the binary it built, keeping the other target', () => {
    expect(readFileSync(join(outdir, 'SHA256SUMS'), 'utf8')).toBe(`${sha256Of(join(outdir, other))}  ${other}\n${sha256Of(binary)}  ${host}\n`)
  })

  test('install.sh --verify-only accepts the fresh build through the SHA256SUMS next to it, and installs nothing', () => {
    const result = install(['--verify-only', binary])
    expect(result).toMatchObject({ code: 0, stderr: '' })
    expect(result.stdout).toContain('✅ Checksum verified')
    expect(result.stdout).toContain('nothing installed (--verify-only)')
    expect(existsSync(join(home, '.xopcbot'))).toBe(false)
  }, 30_000)

  test('install.sh refuses a binary that differs from its SHA256SUMS line', () => {
    const tampered = tempDir('xopcbot-tampered-')
    copyFileSync(binary, join(tampered, host))
    copyFileSync(join(outdir, 'SHA256SUMS'), join(tampered, 'SHA256SUMS'))
    appendFileSync(join(tampered, host), 'x')
    const result = install(['--verify-only', join(tampered, host)])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`checksum mismatch: expected ${sha256Of(binary)}, got ${sha256Of(join(tampered, host))}`)
    expect(result.stdout).not.toContain('Checksum verified')
    // Without SHA256SUMS next to it (and no --sha256) nothing is trusted.
    const alone = tempDir('xopcbot-alone-')
    copyFileSync(binary, join(alone, host))
    expect(install(['--verify-only', join(alone, host)])).toMatchObject({ code: 1, stderr: expect.stringContaining('no checksum') })
  }, 30_000)
})
