import { chmodSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { canonicalConfigPath } from '../config/paths'
import { ensurePrivateDir } from '../storage/private-files'
import { replaceAtomic } from '../util/atomic-write'

/**
 * Copies the executable `execPath` to <binDir>/xopcbot atomically (copy beside it, then rename), for a service
 * entry to run; returns its path. Running from that very file already, nothing is copied.
 */
export function installBinary(binDir: string, execPath: string = process.execPath, platform: NodeJS.Platform = process.platform): string {
  ensurePrivateDir(binDir)
  const target = join(binDir, platform === 'win32' ? 'xopcbot.exe' : 'xopcbot')
  if (canonicalConfigPath(execPath) === canonicalConfigPath(target)) return target
  replaceAtomic(target, (temp) => {
    copyFileSync(execPath, temp)
    if (platform !== 'win32') chmodSync(temp, 0o755)
  })
  return target
}
