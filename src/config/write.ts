import { randomBytes } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { ensurePrivateDir } from '../storage/files'
import { loadConfig } from './load'
import type { Env } from './paths'

/** A new API token: 32 random bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Changes one value of the config file and writes it back atomically (temp file + rename, mode 0600). The
 * file is validated first: a config that does not load is never rewritten. Formatting and key order of the
 * other keys are kept as JSON.stringify gives them.
 */
export function updateConfigFile(path: string, env: Env, change: (raw: Record<string, any>) => void) {
  const { exists } = loadConfig(path, env)
  const raw: Record<string, any> = exists ? JSON.parse(readFileSync(path, 'utf8')) : {}
  change(raw)
  ensurePrivateDir(dirname(path))
  const temp = `${path}.${process.pid}.tmp`
  writeFileSync(temp, JSON.stringify(raw, null, 2) + '\n', { mode: 0o600 })
  renameSync(temp, path)
  // The change itself must leave a valid config.
  loadConfig(path, env)
}

/** The token as written in the file (before `${VAR}` substitution), if any. */
export function rawToken(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))?.gateway?.auth?.token
  } catch {
    return undefined
  }
}
