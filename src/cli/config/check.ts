import { substituteEnv } from '../../config/load'
import type { Env } from '../../config/paths'
import { Config } from '../../config/schema'
import { describeIssues, formatPath } from '../../validation'

/** One problem of a config: where (`agent.maxSteps`, '' for the whole file) and the sentence that names it. */
export interface Problem {
  path: string
  text: string
}

export interface Check {
  problems: Problem[]
  /** `${VAR}`s not set in this environment: where they are used, and the sentence that says so */
  unsetVariables: Problem[]
  /** the config as the gateway would see it, when it is valid here */
  config: Config | null
}

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/** The key paths (as formatPath writes them) of the strings that use a `${VAR}` that `env` does not set. */
function unresolvedPaths(value: unknown, env: Env, path: PropertyKey[] = [], out: string[] = []): string[] {
  if (typeof value === 'string') {
    for (const match of value.matchAll(REFERENCE)) if (match[1] && env[match[1]] === undefined) out.push(formatPath(path))
  } else if (Array.isArray(value)) value.forEach((item, index) => unresolvedPaths(item, env, [...path, index], out))
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) unresolvedPaths(item, env, [...path, key], out)
  return out
}

/** Whether `path` is `base` or lies below it. */
export const isAtOrUnder = (path: string, base: string) => path === base || path.startsWith(`${base}.`) || path.startsWith(`${base}[`)

/**
 * Checks a config as written (`raw`, before `${VAR}` substitution) the way the gateway's loader does, but
 * reports every problem, not the first kind found. A value that uses a variable this environment does not set
 * cannot be checked here (the gateway may run with another environment): that is reported apart, and the
 * value is otherwise skipped.
 */
export function checkConfig(raw: unknown, env: Env): Check {
  const unresolved = unresolvedPaths(raw, env)
  const envProblems: string[] = []
  const substituted = substituteEnv(raw, env, envProblems)
  const problems: Problem[] = []
  const unsetVariables: Problem[] = []
  for (const text of envProblems) {
    const path = text.slice(0, text.indexOf(': '))
    ;(/: environment variable \S+ is not set$/.test(text) ? unsetVariables : problems).push({ path: path === '(root)' ? '' : path, text })
  }
  const result = Config.safeParse(substituted, { reportInput: true })
  if (result.success) return { problems, unsetVariables, config: problems.length || unsetVariables.length ? null : result.data }
  for (const issue of result.error.issues) {
    for (const text of describeIssues([issue], [], { input: substituted })) {
      const path = issue.code === 'unrecognized_keys' ? text.slice(0, text.lastIndexOf(': unknown key')) : formatPath(issue.path)
      if (unresolved.some((base) => isAtOrUnder(path, base))) continue
      problems.push({ path, text })
    }
  }
  return { problems, unsetVariables, config: null }
}
