import { defineCommand } from 'citty'
import { z } from 'zod'
import { formatKeyPath, getAtPath } from '../../config/edit'
import { resolvePaths } from '../../config/paths'
import { Config } from '../../config/schema'
import { CliError, ExitCode, UsageError } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { readConfigFile } from './change'
import { checkConfig } from './check'
import { configJsonSchema, typesAt } from './json-schema'
import { maskConfigValue } from './mask'
import { keyPathArg } from './set'

const args = {
  ...configArg,
  key: { type: 'positional', description: 'Key path, e.g. agent.model (default: the whole file)', required: false },
  json: { type: 'boolean', description: 'Print the value as JSON (a string in quotes)' },
  'show-secrets': { type: 'boolean', description: 'Print API keys, tokens and header values unmasked' },
} as const

export default defineCommand({
  meta: {
    name: 'get',
    description: 'Print a value of the config file as written (its default when it is not set; secrets masked), or the whole file. Example: xopcbot config get agent.model',
  },
  args,
  run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), json: z.boolean().optional(), showSecrets: z.boolean().optional() })
    const [keyText, extra] = parsed._
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const path = keyText === undefined ? [] : keyPathArg(keyText, 'usage: xopcbot config get [<key path>]')
    const { configPath } = resolvePaths({ env: process.env, configFlag: flags.config })
    const file = readConfigFile(configPath)
    let value = getAtPath(file?.raw ?? {}, path)
    const inFile = value !== undefined
    if (!file && !path.length) console.error(`ℹ️ There is no config file at ${configPath}: every setting has its default.`)
    if (value === undefined) {
      const key = formatKeyPath(path)
      if (!typesAt(configJsonSchema(), path).size) throw new CliError(`${key} is not a config key (see: xopcbot config schema)`)
      value = getAtPath(Config.parse({}), path)
      if (value === undefined) throw new CliError(`${key} is not set in ${configPath}`)
      console.error(`ℹ️ ${key} is not set in ${configPath}; this is its default.`)
    }
    // Secrets are also found by value (secretsOf), where the file is valid in this environment.
    // A value of the file is masked as part of the whole file, where what surrounds it is known (an MCP server's
    // args: `--token` then its value).
    const valid = file ? checkConfig(file.raw, process.env).config : null
    const shown = flags.showSecrets ? value : inFile ? getAtPath(maskConfigValue(file!.raw, [], valid, process.env), path) : maskConfigValue(value, path, valid, process.env)
    console.log(typeof shown === 'string' && !flags.json ? shown : JSON.stringify(shown, null, 2))
    return ExitCode.OK
  },
})
