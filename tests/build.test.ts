import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { binaryFormat, expectedFormat, hostFile, TARGETS } from '../build/targets'

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
