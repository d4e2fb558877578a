import { randomBytes } from 'node:crypto'
import { editJsonTo, writeConfigText } from './edit'
import { loadConfig, readConfigText, readRawConfig, type LoadOptions } from './load'
import type { Env } from './paths'

/** A new API token: 32 random bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Changes one value of the config file and writes it back atomically (temp file + rename, mode 0600). The
 * file is validated first: a config that does not load is never rewritten. Only the values that `change` changes
 * are edited in the file's text (see edit.ts): every other byte stays as written, `${VAR}` references included
 * (never their values), and so do key order and layout. `options.needs` limits the validation to the keys the
 * caller changes (see loadConfig), so a variable used elsewhere need not be set in this shell.
 */
export function updateConfigFile(path: string, env: Env, change: (raw: Record<string, any>) => void, options: LoadOptions = {}) {
  loadConfig(path, env, options)
  const text = readConfigText(path) ?? '{}\n'
  const raw: Record<string, any> = JSON.parse(text)
  change(raw)
  writeConfigText(path, editJsonTo(text, raw))
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
