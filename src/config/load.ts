import { readFileSync } from 'node:fs'
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
      : `it is not valid JSON (${(error as Error).message.replace(/^JSON Parse error: /, '')})`
    throw new ConfigError(`config ${path}`, [reason])
  }
}

/**
 * Reads and validates a config file. A missing file gives the defaults; anything invalid throws a
 * ConfigError naming the file, the key path and the problem. The file is only read, never written.
 */
export function loadConfig(path: string, env: Env): LoadedConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { config: Config.parse({}), path, exists: false }
    if (code === 'EISDIR') throw new ConfigError(`config ${path}`, ['it is a directory, not a file'])
    throw new ConfigError(`config ${path}`, [`cannot be read (${code ?? (error as Error).message})`])
  }
  const raw = parseJson(text, path)
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config ${path}`, ['the top level must be a JSON object'])
  }
  const problems: string[] = []
  const substituted = substituteEnv(raw, env, problems)
  if (problems.length) throw new ConfigError(`config ${path}`, problems)
  const result = Config.safeParse(substituted, { reportInput: true })
  if (!result.success) throw new ConfigError(`config ${path}`, describeIssues(result.error.issues))
  return { config: result.data, path, exists: true }
}
