import { defineCommand } from 'citty'
import { z } from 'zod'
import { formatKeyPath, JsonEditError, parseKeyPath, setJsonValue } from '../../config/edit'
import { UsageError } from '../../errors'
import { formatPath } from '../../validation'
import { configArg, parseFlags, PathFlag } from '../args'
import { changeConfig } from './change'
import { coerceText, configJsonSchema, typesAt } from './json-schema'
import { maskConfigValue } from './mask'

const args = {
  ...configArg,
  key: { type: 'positional', description: 'Key path, e.g. agent.model, channels.telegram.allowFrom[0], pricing["openai/gpt-4.1"].input', required: true },
  value: { type: 'positional', description: 'The value: text, or JSON with --json (after "--" when it starts with "-")', required: true },
  json: { type: 'boolean', description: 'The value is JSON (an object, a list, a number, true/false, null or a "string")' },
} as const

/** The key path of a command line, or a usage error that shows how to write one. */
export function keyPathArg(text: string | undefined, usage: string): (string | number)[] {
  if (!text) throw new UsageError(usage)
  try {
    return parseKeyPath(text)
  } catch (error) {
    if (error instanceof JsonEditError) throw new UsageError(error.message)
    throw error
  }
}

export default defineCommand({
  meta: {
    name: 'set',
    description:
      'Set one value in the config file (checked first; written atomically; nothing else in the file changes) and tell the running gateway. Examples: xopcbot config set agent.model anthropic/claude-sonnet-4-5; xopcbot config set channels.telegram.allowFrom \'[123]\' --json',
  },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional() })
    const usage = 'usage: xopcbot config set <key path> <value> [--json]'
    // An empty value ('') is a value: the empty string.
    const [keyText, valueText, extra] = parsed._
    const path = keyPathArg(keyText, usage)
    if (valueText === undefined) throw new UsageError(usage)
    // Not repeated: it may be part of a secret that was meant to be quoted.
    if (extra !== undefined) throw new UsageError('one value is expected after the key path; quote a value that has spaces')
    let value: unknown
    const schema = configJsonSchema()
    if (flags.json) {
      try {
        value = JSON.parse(valueText)
      } catch {
        // The parser's message quotes the value, which may be a secret.
        throw new UsageError(`--json: the value is not valid JSON; a string is written in quotes: '"text"'`)
      }
    } else value = coerceText(valueText, typesAt(schema, path))
    const shown = (v: unknown) => JSON.stringify(maskConfigValue(v, path, null, process.env))
    return changeConfig(flags.config, {
      at: formatPath(path),
      edit: (text) => setJsonValue(text, path, value),
      done: () => `${formatKeyPath(path)} = ${shown(value)}`,
      // A list or an object given as text is a string: say how to give it as JSON.
      hint: () => {
        if (flags.json || typeof value !== 'string') return ''
        try {
          const json = JSON.parse(value)
          return json !== null && typeof json === 'object' ? ' (to give a list or an object, add --json)' : ''
        } catch {
          return ''
        }
      },
    })
  },
})
