import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'

/** Directories that hold secrets are 0700 (SPEC §2). An existing directory's mode is left as the user set it. */
export function ensurePrivateDir(dir: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
}

/** Creates `file` with mode 0600 if it does not exist, and tightens it to 0600 if it does. */
export function ensurePrivateFile(file: string) {
  closeSync(openSync(file, 'a', 0o600))
  if (process.platform !== 'win32') chmodSync(file, 0o600)
}
