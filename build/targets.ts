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
