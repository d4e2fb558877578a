import { z } from 'zod'

type Issue = z.core.$ZodIssue

/**
 * The one formatter of validation problems: request bodies, query strings and path parameters, the config file
 * and the environment, CLI flags, webhook events, backups. Every zod issue becomes `<where>: <what is wrong>` in
 * the user's words (`message: must be a string`, `gateway.port: must be at most 65535`), never zod's own wording
 * ("Invalid input: expected string, received number"). Messages written in our schemas are already in the
 * user's words and are kept as they are.
 */

/** `['gateway', 'cors', 'origins', 0]` → `gateway.cors.origins[0]` */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out ? `.${String(part)}` : String(part)
  }
  return out
}

export interface DescribeOptions {
  /**
   * The value that was validated. A value missing at an issue's path is then "is required" whatever the schema
   * says (zod leaves missing values out of its issues, so an enum cannot tell "missing" from "wrong" itself).
   */
  input?: unknown
  /** What the keys of an object are called in the user's terms: "key" (the config, the default) or "field" (requests). */
  noun?: 'field' | 'key'
}

interface Problem {
  path: PropertyKey[]
  text: string
}

/**
 * Turns zod issues into sentences that name the field: `gateway.port: must be at most 65535`.
 * `prefix` is prepended to every path (e.g. "query", "--port").
 */
export function describeIssues(issues: readonly Issue[], prefix: ReadonlyArray<PropertyKey> = [], options: DescribeOptions = {}): string[] {
  const out: string[] = []
  for (const issue of issues) {
    for (const problem of problemsOf(issue, [...issue.path], options)) {
      const where = formatPath([...prefix, ...problem.path])
      out.push(where ? `${where}: ${problem.text}` : problem.text)
    }
  }
  return out
}

/** What is wrong, for one issue, without the issue's own path: `must be a whole number`. */
export function describeProblem(issue: Issue, options: DescribeOptions = {}): string {
  return problemsOf(issue, [], options)
    .map((problem) => (problem.path.length ? `${formatPath(problem.path)}: ${problem.text}` : problem.text))
    .join('; ')
}

function problemsOf(issue: Issue, path: PropertyKey[], options: DescribeOptions): Problem[] {
  const noun = options.noun ?? 'key'
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: [...path, key], text: `unknown ${noun}` }))
  if (isMissing(issue, options)) return [{ path, text: 'is required' }]
  // An empty message (`z.string({ error: () => '' })`) would leave `key: ` and no reason: reworded instead.
  if (!isZodWording(issue) && issue.message.trim()) return [{ path, text: issue.message }]
  switch (issue.code) {
    case 'invalid_type':
      return [{ path, text: mustBe(issue.expected) }]
    case 'too_small':
    case 'too_big':
      return [{ path, text: sizeText(issue) }]
    case 'invalid_value':
      return [{ path, text: `must be ${oneOf(issue.values)}` }]
    case 'invalid_format':
      return [{ path, text: formatText(issue) }]
    case 'not_multiple_of':
      return [{ path, text: `must be a multiple of ${String(issue.divisor)}` }]
    case 'invalid_key': {
      const inner = issue.issues.map((i) => describeProblem(i)).join('; ')
      return [{ path, text: `is not an allowed name${inner ? `: ${inner}` : ''}` }]
    }
    case 'invalid_element': {
      const inner = issue.issues.map((i) => describeProblem(i)).join('; ')
      return [{ path, text: `holds an invalid ${issue.origin === 'map' ? 'entry' : 'item'}${inner ? `: ${inner}` : ''}` }]
    }
    case 'invalid_union':
      return unionProblems(issue, path, options)
    default:
      return [{ path, text: 'is invalid' }]
  }
}

/** Is the issue's message zod's own (to be reworded) rather than one written in our schema (kept)? */
function isZodWording(issue: Issue): boolean {
  // zod's message names the type it received, which it computed from the input; the input is not in every issue.
  if (issue.code === 'invalid_type') return issue.message.startsWith(`Invalid input: expected ${issue.expected}, received `)
  const localeError = z.config().localeError
  const own = localeError?.(issue as never)
  return issue.message === (typeof own === 'string' ? own : own?.message)
}

const saysUndefined = (issue: Issue) => issue.code === 'invalid_type' && isZodWording(issue) && /received undefined$/.test(issue.message)

function isMissing(issue: Issue, options: DescribeOptions): boolean {
  // zod's own wording says what it received, also after a transform changed the value's shape.
  if (issue.code === 'invalid_type' && isZodWording(issue)) return saysUndefined(issue)
  // Every alternative of a union refused the missing value with zod's own "received undefined".
  if (issue.code === 'invalid_union' && issue.errors.length > 0 && issue.errors.every((branch) => branch.length > 0 && branch.every((i) => i.path.length === 0 && saysUndefined(i)))) return true
  if (issue.code !== 'invalid_type' && issue.code !== 'invalid_value' && issue.code !== 'invalid_union') return false
  return 'input' in options && valueAt(options.input, issue.path) === undefined
}

/** The value at a path inside `input`; undefined when a step on the way is missing. */
function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return value
}

const TYPES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  bigint: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  map: 'an object',
  array: 'an array',
  tuple: 'an array',
  set: 'an array',
  date: 'a date',
  null: 'null',
  file: 'a file',
}

function mustBe(expected: string): string {
  if (expected === 'never') return 'is not allowed'
  if (expected === 'undefined' || expected === 'void') return 'must be left out'
  return `must be ${TYPES[expected] ?? `a ${expected}`}`
}

/** `"a"` → `a`; values that would read ambiguously (spaces, commas, the empty string) keep their quotes. */
function shown(value: unknown): string {
  if (typeof value === 'string') return /^[\w.@:/+*-]+$/.test(value) ? value : JSON.stringify(value)
  if (typeof value === 'bigint') return String(value)
  return JSON.stringify(value) ?? String(value)
}

function oneOf(values: readonly unknown[]): string {
  if (values.length === 1) return shown(values[0])
  return `one of ${values.map(shown).join(', ')}`
}

const UNITS: Record<string, [string, string]> = {
  string: ['character', 'characters'],
  array: ['item', 'items'],
  set: ['item', 'items'],
  map: ['entry', 'entries'],
  file: ['byte', 'bytes'],
}

function sizeText(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>): string {
  const small = issue.code === 'too_small'
  const bound = small ? issue.minimum : issue.maximum
  const limit = issue.origin === 'date' ? new Date(Number(bound)).toISOString() : String(bound)
  const unit = UNITS[issue.origin]
  if (unit) {
    if (small && Number(bound) === 1 && !issue.exact) return 'must not be empty'
    const noun = Number(bound) === 1 ? unit[0] : unit[1]
    const verb = issue.origin === 'string' || issue.origin === 'file' ? 'be' : 'have'
    const measure = `${issue.exact ? 'exactly' : small ? 'at least' : 'at most'} ${limit} ${noun}`
    return verb === 'be' ? `must be ${measure} long` : `must have ${measure}`
  }
  if (issue.origin === 'date') return `must be ${small ? (issue.inclusive ? 'on or after' : 'after') : issue.inclusive ? 'on or before' : 'before'} ${limit}`
  if (issue.exact) return `must be exactly ${limit}`
  if (small) return issue.inclusive ? `must be at least ${limit}` : `must be greater than ${limit}`
  return issue.inclusive ? `must be at most ${limit}` : `must be less than ${limit}`
}

const FORMATS: Record<string, string> = {
  email: 'an email address',
  url: 'a URL',
  datetime: 'an ISO 8601 date-time such as 2026-11-30T09:00:00Z',
  date: 'a date such as 2026-11-30',
  time: 'a time such as 09:00:00',
  duration: 'an ISO 8601 duration such as PT5M',
  uuid: 'a UUID',
  guid: 'a UUID',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
  cidrv4: 'an IPv4 range such as 10.0.0.0/8',
  cidrv6: 'an IPv6 range such as fd00::/8',
  base64: 'base64 text',
  base64url: 'base64url text',
  json_string: 'a JSON text',
  e164: 'a phone number such as +4930123456',
  jwt: 'a JWT',
  lowercase: 'lower case',
  uppercase: 'upper case',
}

function formatText(issue: Extract<Issue, { code: 'invalid_format' }>): string {
  const details = issue as { prefix?: string; suffix?: string; includes?: string; pattern?: string }
  switch (issue.format) {
    case 'starts_with':
      return `must start with ${JSON.stringify(details.prefix)}`
    case 'ends_with':
      return `must end with ${JSON.stringify(details.suffix)}`
    case 'includes':
      return `must contain ${JSON.stringify(details.includes)}`
    case 'regex':
      return `must match the pattern ${String(details.pattern)}`
    default:
      return `must be ${FORMATS[issue.format] ?? `a valid ${issue.format}`}`
  }
}

/**
 * A value that fits none of a union's alternatives. When every alternative refused it for its type, the answer
 * lists what it may be ("must be a string or a whole number"); when just one alternative got further (the
 * right type, a wrong field inside), that alternative's problems are the answer.
 */
function unionProblems(issue: Extract<Issue, { code: 'invalid_union' }>, path: PropertyKey[], options: DescribeOptions): Problem[] {
  const details = issue as { discriminator?: string; options?: unknown[]; inclusive?: boolean }
  if (details.discriminator !== undefined && details.options?.length) {
    // zod names the discriminator in the path; say it for versions that do not.
    const at = path.at(-1) === details.discriminator ? path : [...path, details.discriminator]
    return [{ path: at, text: `must be ${oneOf(details.options)}` }]
  }
  if (details.inclusive === false) return [{ path, text: 'fits more than one of the allowed forms' }]
  const alternatives: string[] = []
  const further: Issue[][] = []
  for (const branch of issue.errors) {
    const first = branch[0]
    if (branch.length === 1 && first && first.path.length === 0 && (first.code === 'invalid_type' || first.code === 'invalid_value') && isZodWording(first)) {
      alternatives.push(first.code === 'invalid_type' ? (TYPES[first.expected] ?? `a ${first.expected}`) : oneOf(first.values))
    } else further.push(branch)
  }
  if (further.length === 1) {
    // The alternative's issues are relative to the union's value.
    const nested: DescribeOptions = 'input' in options ? { ...options, input: valueAt(options.input, issue.path) } : options
    return further[0]!.flatMap((inner) => problemsOf(inner, [...path, ...inner.path], nested))
  }
  if (further.length === 0 && alternatives.length > 0) {
    const unique = [...new Set(alternatives)]
    const last = unique.pop()!
    return [{ path, text: `must be ${unique.length ? `${unique.join(', ')} or ${last}` : last}` }]
  }
  return [{ path, text: 'fits none of the allowed forms' }]
}
