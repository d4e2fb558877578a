import { defineCommand } from 'citty'
import { Config } from '../../config/schema'
import { formatKeyPath, getAtPath, unsetJsonValue } from '../../config/edit'
import { UsageError } from '../../errors'
import { formatPath } from '../../validation'
import { configArg, parseFlags, PathFlag } from '../args'
import { changeConfig } from './change'
import { maskConfigValue } from './mask'
import { keyPathArg } from './set'

const args = {
  ...configArg,
  key: { type: 'positional', description: 'Key path, e.g. agent.maxSteps or providers.openai', required: true },
} as const

export default defineCommand({
  meta: {
    name: 'unset',
    description: 'Remove a key from the config file (its default applies again) and tell the running gateway. Example: xopcbot config unset agent.maxSteps',
  },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional() })
    const [keyText, extra] = parsed._
    const path = keyPathArg(keyText, 'usage: xopcbot config unset <key path>')
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const key = formatKeyPath(path)
    return changeConfig(flags.config, {
      at: formatPath(path),
      edit: (text) => unsetJsonValue(text, path),
      done: () => {
        const fallback = getAtPath(Config.parse({}), path)
        return `Removed ${key}${fallback === undefined ? '' : `; its default applies: ${JSON.stringify(maskConfigValue(fallback, path, null, process.env))}`}`
      },
      nothing: `${key} is not in the config file; nothing was changed.`,
    })
  },
})
