import type { ArgDef, ArgsDef, ParsedArgs } from 'citty'
import { z } from 'zod'
import { UsageError } from '../errors'
import { describeProblem } from '../validation'

/** Shared flag definitions; each command spreads the ones it takes. */
export const configArg = {
  config: { type: 'string', description: 'Path of the config file (default: $XOPCBOT_CONFIG or ~/.xopcbot/config.json)', valueHint: 'path' },
} as const satisfies ArgsDef

export const serverArgs = {
  port: { type: 'string', description: 'Port to listen on (default: 18790)', valueHint: 'number' },
  host: { type: 'string', description: 'Address to bind (default: 0.0.0.0)', valueHint: 'address' },
  token: { type: 'string', description: 'API token (default: gateway.auth.token or $XOPCBOT_GATEWAY_TOKEN); visible in ps: prefer --token-file', valueHint: 'token' },
  'token-file': { type: 'string', description: 'Read the API token from this file (one line; keep it chmod 600)', valueHint: 'path' },
} as const satisfies ArgsDef

/**
 * A flag given as text, checked by `schema` after the text is turned into what it stands for. The flags checked
 * by the config schema (port, host, token) are in server-flags.ts: building that schema is a good part of what a
 * management command costs (~5 ms), so only the commands that take those flags load it.
 */
export const flag = <T extends z.ZodType<unknown, string>>(schema: T) => z.string().min(1, 'needs a value').pipe(schema)

export const PathFlag = flag(z.string())

/**
 * zod compiles a parser (new Function) for each object schema at its first parse. That pays in the gateway,
 * which parses the same schemas for as long as it runs; a command that parses each once spent more compiling
 * than parsing (~4 ms of `gateway status`). Only schemas built after this call are affected.
 */
export const parseEachSchemaOnce = () => void z.config({ jitless: true })

/** Flags whose values are secrets: an error about them never repeats the value. */
const SECRET_FLAGS = new Set(['token'])

/** Flags kept out of the help and out of suggestions: set by the service entries we write, not by people. */
export const isHidden = (arg: ArgDef) => 'hidden' in arg && arg.hidden === true

const kebabOf = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const camelOf = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** Every spelling of each flag (name, kebab-case, --no- form, aliases) → the key its value has in the parsed args. */
function knownFlags(def: ArgsDef): Map<string, { key: string; arg: ArgDef | null }> {
  const names = new Map<string, { key: string; arg: ArgDef | null }>([
    ['help', { key: 'help', arg: null }],
    ['h', { key: 'help', arg: null }],
  ])
  for (const [name, arg] of Object.entries(def)) {
    if (arg.type === 'positional') continue
    const entry = { key: camelOf(name), arg }
    const kebab = kebabOf(name)
    names.set(name, entry).set(kebab, entry)
    if (arg.type === 'boolean') names.set(`no-${name}`, entry).set(`no-${kebab}`, entry)
    for (const alias of ['alias' in arg ? (arg.alias ?? []) : []].flat()) names.set(alias, entry)
  }
  return names
}

/**
 * The candidate closest to `word` when it is close enough to be a typo (a letter missing, extra, wrong or two
 * swapped: `gatway`, `stauts`, `prot`), or that `word` begins (`--fol` → `--follow`); else undefined.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const limit = word.length < 4 ? 1 : 2
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance]
  }
  if (best !== undefined && bestDistance <= limit) return best
  const extending = word.length >= 3 ? candidates.filter((c) => c.startsWith(word)) : []
  return extending.length === 1 ? extending[0] : undefined
}

/** Optimal string alignment distance: Levenshtein plus the swap of two neighbouring letters as one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      rows[i]![j] = d
    }
  }
  return rows[a.length]![b.length]!
}

/** The `; did you mean --port?` tail of a usage error, or nothing. */
export const didYouMean = (suggestion: string | undefined) => (suggestion ? `; did you mean ${suggestion}?` : '')

/** `-5`, `-0.5`: a negative number, which citty would read as a flag of its own. */
const NEGATIVE_NUMBER = /^-\d/

/**
 * Validates a command's flags with zod: unknown flags and stray words are usage errors, and every value
 * error names its flag (`--port: must be a whole number from 1 to 65535 (got "abc")`).
 */
export function parseFlags<T extends z.ZodRawShape>(def: ArgsDef, args: { _: string[] } & Record<string, unknown>, rawArgs: string[], shape: T): z.infer<z.ZodObject<T>> {
  const known = knownFlags(def)
  // citty reads `--lines -5` as --lines without a value followed by a flag -5. A negative number right after a
  // flag that takes a value is that flag's value: then the flag's own rule says what is wrong with it.
  const negative: Record<string, string> = {}
  for (const [index, raw] of rawArgs.entries()) {
    if (raw === '--') break
    if (!raw.startsWith('-') || raw === '-') continue
    const before = index > 0 && !rawArgs[index - 1]!.includes('=') ? known.get(rawArgs[index - 1]!.replace(/^--?/, '')) : undefined
    if (NEGATIVE_NUMBER.test(raw) && before?.arg && before.arg.type !== 'boolean' && rawArgs[index - 1]!.startsWith('-')) {
      negative[before.key] = raw
      continue
    }
    const name = raw.replace(/^--?/, '').split('=')[0]!
    // The parser reads `-force` as -f -o -r -c -e and `--h` as no -h: a name counts only in the spelling it is
    // parsed in, else `gateway -force` would start without --force and `gateway --h` start the gateway.
    const asParsed = raw.startsWith('--') ? name.length > 1 : name.length === 1
    if (!known.has(name) || !asParsed) {
      const visible = Object.entries(def).filter(([, arg]) => arg.type !== 'positional' && !isHidden(arg)).map(([flagName]) => kebabOf(flagName))
      const suggestion = raw.startsWith('--') ? closest(name, [...visible, 'help']) : name.length > 1 && visible.includes(name) ? name : undefined
      const takesWords = Object.values(def).some((arg) => arg.type === 'positional')
      const afterDashes = NEGATIVE_NUMBER.test(raw) && takesWords ? ` (an argument that starts with "-" goes after "--", e.g. -- ${raw})` : ''
      throw new UsageError(`unknown option ${raw.split('=')[0]}${didYouMean(suggestion && `--${suggestion}`)}${afterDashes}`)
    }
  }
  const positionals = args._.filter((word) => word !== '')
  if (positionals.length && !Object.values(def).some((a) => a.type === 'positional')) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`)
  }
  const input: Record<string, unknown> = {}
  for (const key of Object.keys(shape)) input[key] = negative[key] ?? args[key]
  const result = z.object(shape).safeParse(input)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const name = String(issue.path[0] ?? '')
    const given = input[name]
    const kebab = kebabOf(name)
    const shown = typeof given === 'string' && given && !SECRET_FLAGS.has(name) ? ` (got ${JSON.stringify(given)})` : ''
    throw new UsageError(`--${kebab}: ${describeProblem(issue, { input })}${shown}`)
  }
  return result.data
}
