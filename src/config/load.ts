import { readFileSync, statSync } from 'node:fs'
import { ConfigError } from '../errors'
import { describeIssues, formatPath } from '../validation'
import { Config } from './schema'
import type { Env } from './paths'

export interface LoadedConfig {
  config: Config
  path: string
  /** false when the file does not exist and only defaults apply */
  exists: boolean
}

const VAR = /\$\{([^}]*)\}|\$\$\{/g

/**
 * Replaces `${NAME}` in every string of the parsed JSON with the environment variable. `$${` stands for a
 * literal `${`. Substituting after parsing means a value can never break the JSON around it.
 */
export function substituteEnv(value: unknown, env: Env, problems: string[], path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value
    return value.replace(VAR, (match, name: string | undefined) => {
      if (match === '$${') return '${'
      if (!name || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push(`${formatPath(path) || '(root)'}: "\${${name ?? ''}}" is not a valid variable reference`)
        return match
      }
      const replacement = env[name]
      if (replacement === undefined) {
        problems.push(`${formatPath(path) || '(root)'}: environment variable ${name} is not set`)
        return match
      }
      return replacement
    })
  }
  if (Array.isArray(value)) return value.map((item, index) => substituteEnv(item, env, problems, [...path, index]))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = substituteEnv(item, env, problems, [...path, key])
    return out
  }
  return value
}

/**
 * The parser's complaint without the text it quotes: an unquoted value (`Unexpected identifier "sk-…"`) is often
 * a key or token pasted without its quotes, and this message reaches the log, /api/status and the reload answer.
 */
const jsonProblem = (error: Error) =>
  error.message
    .replace(/^JSON Parse error: /, '')
    .replace(/\s*"[^"]*"|\s*'[^']{2,}'/g, '')
    .replace(/^Unexpected identifier$/, 'a value is not in quotes')

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    // JSONC accepts what people most often paste by mistake: comments and trailing commas. Say so precisely.
    let jsoncWouldParse = false
    try {
      Bun.JSONC.parse(text)
      jsoncWouldParse = true
    } catch {}
    const reason = jsoncWouldParse
      ? 'it contains comments or trailing commas, which JSON does not allow; remove them'
      : `it is not valid JSON (${jsonProblem(error as Error)})`
    throw new ConfigError(`config ${path}`, [reason])
  }
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024

/**
 * The text of a config file, or null when there is none. Only a regular file is read (a FIFO would block the
 * start, a device would never end), and a UTF-8 byte order mark, which some Windows editors write, is dropped.
 */
export function readConfigText(path: string): string | null {
  const unreadable = (error: unknown) => new ConfigError(`config ${path}`, [`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`])
  let stat
  try {
    stat = statSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw unreadable(error)
  }
  if (stat.isDirectory()) throw new ConfigError(`config ${path}`, ['it is a directory, not a file; give the path of the config file'])
  if (!stat.isFile()) throw new ConfigError(`config ${path}`, ['it is not a regular file (a FIFO, socket or device); give the path of a JSON file'])
  // Read whole and parsed on every reload: a file this large is the wrong file, and would stall the gateway.
  if (stat.size > MAX_CONFIG_BYTES) throw new ConfigError(`config ${path}`, [`it is ${stat.size} bytes; a config file is at most ${MAX_CONFIG_BYTES / 1024 / 1024} MiB (is this the right file?)`])
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw unreadable(error)
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** The parsed JSON of a config file as written (no `${VAR}` substituted), or null when there is none. */
export function readRawConfig(path: string): Record<string, unknown> | null {
  const text = readConfigText(path)
  if (text === null) return null
  const raw = parseJson(text, path)
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config ${path}`, ['the top level must be a JSON object'])
  }
  return raw as Record<string, unknown>
}

export interface LoadOptions {
  /**
   * The key paths the caller reads, e.g. `["dataDir", "logging"]` or `["gateway.auth"]`. Only these are
   * substituted and validated, so a `${VAR}` (or a mistake) elsewhere does not stop a command that does not use
   * it; every other key has its default in the result, so the caller must not read it. Default: everything (the
   * gateway itself needs the whole config).
   */
  needs?: readonly string[] | undefined
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value)

/** The part of `raw` under the `needs` key paths, with the same shape. */
function pick(raw: Record<string, unknown>, needs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const need of needs) {
    const keys = need.split('.')
    let from: Record<string, unknown> = raw
    let to = out
    for (const [index, key] of keys.entries()) {
      if (!Object.hasOwn(from, key)) break
      const value = from[key]
      if (to[key] === value) break // a shorter key path already took the whole of it
      // The last key, or a value that is not an object where one is expected (validation then names it).
      if (index === keys.length - 1 || !isPlainObject(value)) {
        to[key] = value
        break
      }
      to = (to[key] ??= {}) as Record<string, unknown>
      from = value
    }
  }
  return out
}

/**
 * Reads and validates a config file. A missing file gives the defaults; anything invalid throws a
 * ConfigError naming the file, the key path and the problem. The file is only read, never written.
 */
export function loadConfig(path: string, env: Env, options: LoadOptions = {}): LoadedConfig {
  const written = readRawConfig(path)
  if (written === null) return { config: Config.parse({}), path, exists: false }
  const raw = options.needs ? pick(written, options.needs) : written
  const problems: string[] = []
  const substituted = substituteEnv(raw, env, problems)
  if (problems.length) throw new ConfigError(`config ${path}`, problems)
  const result = Config.safeParse(substituted, { reportInput: true })
  if (!result.success) throw new ConfigError(`config ${path}`, describeIssues(result.error.issues, [], { input: substituted }))
  return { config: result.data, path, exists: true }
}
