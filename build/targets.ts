/** Release targets (SPEC §11): Bun's compile target → the name of the file in dist/. */
export const TARGETS = [
  { target: 'bun-linux-x64', file: 'xopcbot-linux-x64' },
  { target: 'bun-linux-arm64', file: 'xopcbot-linux-arm64' },
  { target: 'bun-linux-x64-musl', file: 'xopcbot-linux-x64-musl' },
  { target: 'bun-linux-arm64-musl', file: 'xopcbot-linux-arm64-musl' },
  { target: 'bun-darwin-x64', file: 'xopcbot-darwin-x64' },
  { target: 'bun-darwin-arm64', file: 'xopcbot-darwin-arm64' },
  { target: 'bun-windows-x64', file: 'xopcbot-windows-x64.exe' },
] as const

const OS: Partial<Record<NodeJS.Platform, string>> = { linux: 'linux', darwin: 'darwin', win32: 'windows' }

/** The file name of a binary for the machine running the build. */
export function hostFile(platform = process.platform, arch = process.arch): string {
  const os = OS[platform]
  if (!os || (arch !== 'x64' && arch !== 'arm64')) throw new Error(`no release target for ${platform}-${arch}`)
  return `xopcbot-${os}-${arch}${os === 'windows' ? '.exe' : ''}`
}

export interface BinaryFormat {
  format: 'ELF' | 'Mach-O' | 'PE'
  arch: 'x64' | 'arm64' | 'unknown'
}

/** Reads the executable format and machine from a file's header (ELF e_machine, Mach-O cputype, PE Machine). */
export function binaryFormat(header: Uint8Array): BinaryFormat | null {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
  if (header.length >= 20 && header[0] === 0x7f && header[1] === 0x45 && header[2] === 0x4c && header[3] === 0x46) {
    const machine = view.getUint16(18, header[5] === 1)
    return { format: 'ELF', arch: machine === 0x3e ? 'x64' : machine === 0xb7 ? 'arm64' : 'unknown' }
  }
  if (header.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true)
    return { format: 'Mach-O', arch: cpu === 0x01000007 ? 'x64' : cpu === 0x0100000c ? 'arm64' : 'unknown' }
  }
  if (header.length >= 0x40 && header[0] === 0x4d && header[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true)
    if (pe + 6 <= header.length && view.getUint32(pe, true) === 0x00004550) {
      const machine = view.getUint16(pe + 4, true)
      return { format: 'PE', arch: machine === 0x8664 ? 'x64' : machine === 0xaa64 ? 'arm64' : 'unknown' }
    }
  }
  return null
}

/** What a target's binary must look like. */
export function expectedFormat(target: string): BinaryFormat {
  const format = target.includes('windows') ? 'PE' : target.includes('darwin') ? 'Mach-O' : 'ELF'
  return { format, arch: target.includes('arm64') || target.includes('aarch64') ? 'arm64' : 'x64' }
}
