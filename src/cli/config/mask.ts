import type { Config } from '../../config/schema'
import { isReferenceOnly, isSecretKey } from '../../config/secrets'
import { Redactor, secretsOf } from '../../logging/redact'
import { maskToken } from '../output'

/** The password of a URL (`postgres://app:pw@db/x`, an MCP server's DATABASE_URL), masked. */
const withoutUrlPassword = (text: string) => text.replace(/(\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s/@]+)@/g, (_, head: string, password: string) => `${head}${maskToken(password)}@`)

/** A command-line flag that takes a credential: `--api-key`, `--token` (as `--token X` or `--token=X`). */
const SECRET_FLAG = /^(--?[A-Za-z][\w-]*)(?:=(.*))?$/s

/**
 * A copy of (part of) a config as written, with its secrets masked (`abc12345...xyz67890`, as tokens are shown
 * everywhere): every string under a key that names a credential or inside `headers`, and wherever else they
 * appear, the secret values the logs redact (secretsOf: the API token, provider keys, channel tokens and
 * secrets, MCP headers and credential env values), as `[REDACTED]`. `path` is where `value` sits in the config.
 */
export function maskConfigValue(value: unknown, path: readonly (string | number)[], config: Config | null, env: Record<string, string | undefined>): unknown {
  const redactor = new Redactor()
  if (config) redactor.setSecrets(secretsOf(config, env))
  const walk = (item: unknown, key: string | undefined, inHeaders: boolean): unknown => {
    if (typeof item === 'string') {
      if ((inHeaders || (key !== undefined && isSecretKey(key))) && !isReferenceOnly(item)) return maskToken(item)
      return withoutUrlPassword(redactor.text(item))
    }
    // An MCP server's args: the value of a credential flag, given with it or as the next argument.
    if (Array.isArray(item) && key === 'args') {
      return item.map((entry, i) => {
        const flag = typeof entry === 'string' ? SECRET_FLAG.exec(entry) : null
        if (flag?.[2] !== undefined && isSecretKey(flag[1]!) && !isReferenceOnly(flag[2])) return `${flag[1]}=${maskToken(flag[2])}`
        const before = typeof item[i - 1] === 'string' ? SECRET_FLAG.exec(item[i - 1] as string) : null
        if (typeof entry === 'string' && before && before[2] === undefined && isSecretKey(before[1]!) && !entry.startsWith('-') && !isReferenceOnly(entry)) return maskToken(entry)
        return walk(entry, key, inHeaders)
      })
    }
    if (Array.isArray(item)) return item.map((entry) => walk(entry, key, inHeaders))
    if (item !== null && typeof item === 'object') {
      return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, walk(v, k, inHeaders || k === 'headers')]))
    }
    return item
  }
  const keys = path.filter((p): p is string => typeof p === 'string')
  return walk(value, keys.at(-1), keys.slice(0, -1).includes('headers') || (keys.at(-1) === 'headers' && typeof value === 'object'))
}
