import type { ArgsDef, ParsedArgs } from 'citty'
import { z } from 'zod'
import { UsageError } from '../errors'

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

function knownFlags(def: ArgsDef): Set<string> {
  const names = new Set(['help', 'h'])
  for (const [name, arg] of Object.entries(def)) {
    if (arg.type === 'positional') continue
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
    names.add(name).add(kebab)
    if (arg.type === 'boolean') names.add(`no-${name}`).add(`no-${kebab}`)
    for (const alias of ['alias' in arg ? (arg.alias ?? []) : []].flat()) names.add(alias)
  }
  return names
}

/**
 * Validates a command's flags with zod: unknown flags and stray words are usage errors, and every value
 * error names its flag (`--port: must be a whole number from 1 to 65535 (got "abc")`).
 */
export function parseFlags<T extends z.ZodRawShape>(def: ArgsDef, args: { _: string[] } & Record<string, unknown>, rawArgs: string[], shape: T): z.infer<z.ZodObject<T>> {
  const known = knownFlags(def)
  for (const raw of rawArgs) {
    if (raw === '--') break
    if (!raw.startsWith('-') || raw === '-') continue
    const name = raw.replace(/^--?/, '').split('=')[0]!
    if (!known.has(name)) throw new UsageError(`unknown option ${raw.split('=')[0]}`)
  }
  const positionals = args._.filter((word) => word !== '')
  if (positionals.length && !Object.values(def).some((a) => a.type === 'positional')) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`)
  }
  const input: Record<string, unknown> = {}
  for (const key of Object.keys(shape)) input[key] = args[key]
  const result = z.object(shape).safeParse(input)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const name = String(issue.path[0] ?? '')
    const given = input[name]
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
    const shown = typeof given === 'string' && given && !SECRET_FLAGS.has(name) ? ` (got ${JSON.stringify(given)})` : ''
    throw new UsageError(`--${kebab}: ${issue.message.replace(/^Invalid input: /, '')}${shown}`)
  }
  return result.data
}
