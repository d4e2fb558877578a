import type { Config } from '../../config/schema'
import { Redactor, secretsOf } from '../../logging/redact'
import { maskToken } from '../output'

/** Words of a key name that mark its value as a credential: `apiKey`, `webhookSecret`, `GITHUB_TOKEN`, `DB_PASSWORD`. */
const SECRET_WORDS = new Set(['token', 'secret', 'password', 'passwd', 'pass', 'pwd', 'passphrase', 'key', 'apikey', 'auth', 'authorization', 'cookie', 'credential', 'credentials', 'pat'])

/** `webhookSecret` → [webhook, secret]; `OPENAI_API_KEY` → [openai, api, key]. `dailyTokens` is not a token. */
const wordsOf = (name: string) =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase())

export const isSecretKey = (name: string) => wordsOf(name).some((word) => SECRET_WORDS.has(word))

/**
 * A value that only refers to the environment (`${TG_TOKEN}`, `Bearer ${SEARCH_TOKEN}`) holds no secret itself,
 * and showing it tells where the secret comes from.
 */
const onlyReferences = (value: string) => value.includes('${') && /^\s*(?:(?:Bearer|Basic|Token)\s+)?$/i.test(value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g, ''))

/**
 * A copy of (part of) a config as written, with its secrets masked (`abc12345...xyz67890`, as tokens are shown
 * everywhere): every string under a key that names a credential or inside `headers`, and wherever else they
 * appear, the secret values the logs redact (secretsOf: the API token, provider keys, channel tokens and
 * secrets, MCP headers and credential env values), as `[REDACTED]`. `path` is where `value` sits in the config.
 */
/** The password of a URL (`postgres://app:pw@db/x`, an MCP server's DATABASE_URL), masked. */
const withoutUrlPassword = (text: string) => text.replace(/(\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s/@]+)@/g, (_, head: string, password: string) => `${head}${maskToken(password)}@`)

/** A command-line flag that takes a credential: `--api-key`, `--token` (as `--token X` or `--token=X`). */
const SECRET_FLAG = /^(--?[A-Za-z][\w-]*)(?:=(.*))?$/s

export function maskConfigValue(value: unknown, path: readonly (string | number)[], config: Config | null, env: Record<string, string | undefined>): unknown {
  const redactor = new Redactor()
  if (config) redactor.setSecrets(secretsOf(config, env))
  const walk = (item: unknown, key: string | undefined, inHeaders: boolean): unknown => {
    if (typeof item === 'string') {
      if ((inHeaders || (key !== undefined && isSecretKey(key))) && !onlyReferences(item)) return maskToken(item)
      return withoutUrlPassword(redactor.text(item))
    }
    // An MCP server's args: the value of a credential flag, given with it or as the next argument.
    if (Array.isArray(item) && key === 'args') {
      return item.map((entry, i) => {
        const flag = typeof entry === 'string' ? SECRET_FLAG.exec(entry) : null
        if (flag?.[2] !== undefined && isSecretKey(flag[1]!) && !onlyReferences(flag[2])) return `${flag[1]}=${maskToken(flag[2])}`
        const before = typeof item[i - 1] === 'string' ? SECRET_FLAG.exec(item[i - 1] as string) : null
        if (typeof entry === 'string' && before && before[2] === undefined && isSecretKey(before[1]!) && !entry.startsWith('-') && !onlyReferences(entry)) return maskToken(entry)
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
