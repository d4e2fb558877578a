import type { Config } from '../config/schema'

const SECRET_KEY = /token|secret|password|api[-_]?key|authorization|cookie/i
/** Environment variable names that usually hold a credential (GITHUB_TOKEN, DB_PASSWORD, SEARCH_KEY, …). */
const SECRET_ENV_NAME = /token|secret|pass|key|credential|auth|cookie|session|private/i
export const REDACTED = '[REDACTED]'
/** Field names seen, and whether they sound secret (the same few names come back on every line). */
const secretKeys = new Map<string, boolean>()

/**
 * Keeps secrets out of log lines: values under secret-sounding keys are replaced, and every known secret
 * value (the API token, provider keys, channel tokens and secrets) is replaced wherever it appears in text.
 */
export class Redactor {
  private secrets: string[] = []

  setSecrets(values: Iterable<string | null | undefined>) {
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...new Set([...values].filter((v): v is string => typeof v === 'string' && v.length >= 4))].sort(
      (a, b) => b.length - a.length,
    )
  }

  text(value: string): string {
    let out = value
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED)
    return out
  }

  /** `value` found under `key`, made safe to serialise: hidden whole when the key sounds secret. */
  field(key: string, value: unknown, depth = 0): unknown {
    if (value === null || value === undefined || typeof value === 'boolean') return value
    let secret = secretKeys.get(key)
    if (secret === undefined) {
      secret = SECRET_KEY.test(key)
      if (secretKeys.size < 1024) secretKeys.set(key, secret)
    }
    return secret ? REDACTED : typeof value === 'number' ? value : this.value(value, depth)
  }

  /** A copy of `value` that is safe to serialise. */
  value(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.text(value)
    if (value === null || typeof value !== 'object') return value
    if (depth > 6) return '[…]'
    if (value instanceof Error) {
      return { name: value.name, message: this.text(value.message), stack: value.stack && this.text(value.stack) }
    }
    if (Array.isArray(value)) return value.map((item) => this.value(item, depth + 1))
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = this.field(key, item, depth + 1)
    return out
  }
}

/**
 * Every secret value a config holds, and the API keys of `env` that providers would read (`keyVars`, the
 * presets' usual variables such as OPENAI_API_KEY): a key need not be in the file to be used, or echoed.
 */
export function secretsOf(config: Config, env: Record<string, string | undefined> = {}, keyVars: readonly string[] = []): string[] {
  const secrets: (string | null)[] = [config.gateway.auth.token]
  for (const provider of Object.values(config.providers)) {
    secrets.push(provider.apiKey, ...Object.values(provider.headers))
  }
  for (const channel of Object.values(config.channels)) {
    if (channel.type === 'telegram') secrets.push(channel.token, channel.webhookSecret)
    else secrets.push(channel.secret)
  }
  // An MCP server's headers carry its credentials (a server may echo the bare token of "Bearer <token>"), and its
  // env is where its own API keys go — under secret-sounding names; other values ("warn", a path) are not
  // secrets, and hiding them would blank those words in every log line.
  for (const server of Object.values(config.mcp.servers)) {
    if (server.transport === 'http') {
      for (const value of Object.values(server.headers)) secrets.push(value, /^[A-Za-z]+\s+(\S{8,})$/.exec(value)?.[1] ?? null)
    } else {
      for (const [key, value] of Object.entries(server.env)) if (SECRET_ENV_NAME.test(key)) secrets.push(value)
    }
  }
  for (const name of keyVars) secrets.push(env[name] ?? null)
  return secrets.filter((s): s is string => !!s)
}
