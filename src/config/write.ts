import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { ensurePrivateDir } from '../storage/private-files'
import { writeFileAtomic } from '../util/atomic-write'
import { loadConfig, readRawConfig, type LoadOptions } from './load'
import type { Env } from './paths'

/** A new API token: 32 random bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Changes one value of the config file and writes it back atomically (temp file + rename, mode 0600). The
 * file is validated first: a config that does not load is never rewritten. Every other value is written back as
 * it was written, `${VAR}` references included (never their values); key order is kept, and the layout is
 * JSON.stringify's. `options.needs` limits the validation to the keys the caller changes (see loadConfig), so
 * a variable used elsewhere need not be set in this shell.
 */
export function updateConfigFile(path: string, env: Env, change: (raw: Record<string, any>) => void, options: LoadOptions = {}) {
  loadConfig(path, env, options)
  const raw: Record<string, any> = readRawConfig(path) ?? {}
  change(raw)
  ensurePrivateDir(dirname(path))
  writeFileAtomic(path, JSON.stringify(raw, null, 2) + '\n', { mode: 0o600 })
  // The change itself must leave a valid config.
  loadConfig(path, env, options)
}

/** The token as written in the file (before `${VAR}` substitution), if any. */
export function rawToken(path: string): unknown {
  try {
    return (readRawConfig(path) as Record<string, any> | null)?.gateway?.auth?.token
  } catch {
    return undefined
  }
}
