import { defineCommand } from 'citty'
import { ExitCode } from '../../errors'
import { parseFlags } from '../args'
import { configJsonSchema } from './json-schema'

export default defineCommand({
  meta: {
    name: 'schema',
    description: 'Print the JSON Schema of the config file, for editors. Example: xopcbot config schema > ~/.xopcbot/config.schema.json, then "$schema": "./config.schema.json" in config.json',
  },
  args: {},
  run({ args, rawArgs }) {
    parseFlags({}, args, rawArgs, {})
    console.log(JSON.stringify(configJsonSchema(), null, 2))
    return ExitCode.OK
  },
})
