/**
 * Which values of a config file are secrets, by the key they sit under — one answer for `config get` (masks
 * them) and `backup` (leaves them out). (The logs' redaction, logging/redact.ts, works from the values themselves.)
 */

/** Words of a key name that mark its value as a credential: `apiKey`, `webhookSecret`, `GITHUB_TOKEN`, `DB_PASSWORD`. */
const SECRET_WORDS = new Set(['token', 'secret', 'password', 'passwd', 'pass', 'pwd', 'passphrase', 'key', 'apikey', 'auth', 'authorization', 'cookie', 'credential', 'credentials', 'pat'])
/** …and names that run them together without a case change or separator (`mytoken`, `dbpassword`). */
const SECRET_PART = /token|secret|password|passwd|api[-_]?key|authorization|cookie|credential/i

/** `webhookSecret` → [webhook, secret]; `OPENAI_API_KEY` → [openai, api, key]. `dailyTokens` is not a token. */
const wordsOf = (name: string) =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase())

export const isSecretKey = (name: string) => SECRET_PART.test(name) || wordsOf(name).some((word) => SECRET_WORDS.has(word))

const REFERENCE = /\$\{[A-Za-z_][A-Za-z0-9_]*\}/g
const HAS_REFERENCE = /\$\{[A-Za-z_][A-Za-z0-9_]*\}/

/**
 * A value that only points at the environment: one or more `${NAME}` references, with at most a scheme word
 * before them ("Bearer ${TOKEN}"). The secret is in the environment, not in the file, so it may be shown and kept.
 * (`$${…}` is an escaped literal, not a reference.)
 */
export function isReferenceOnly(value: string): boolean {
  if (value.includes('$${') || !HAS_REFERENCE.test(value)) return false
  return /^\s*(?:[A-Za-z]+\s+)?$/.test(value.replace(REFERENCE, ''))
}
