import { defineCommand } from 'citty'
import { resolvePaths } from '../../config/paths'
import { ConfigError, ExitCode } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { checkConfig } from './check'
import { readConfigFile } from './change'

export default defineCommand({
  meta: {
    name: 'validate',
    description: 'Check the config file as the gateway would in this environment: "config ok", or every problem as <key path>: <problem> and exit 1. Example: xopcbot config validate --config ./config.json',
  },
  args: configArg,
  run({ args, rawArgs }) {
    const flags = parseFlags(configArg, args, rawArgs, { config: PathFlag.optional() })
    const { configPath } = resolvePaths({ env: process.env, configFlag: flags.config })
    let problems: string[]
    try {
      const file = readConfigFile(configPath)
      if (!file) {
        console.log(`config ok: ${configPath} (there is no file: every setting has its default)`)
        return ExitCode.OK
      }
      const check = checkConfig(file.raw, process.env)
      problems = [...check.unsetVariables, ...check.problems].map((p) => p.text)
    } catch (error) {
      // Not JSON, not a file: the loader's sentence.
      if (!(error instanceof ConfigError)) throw error
      problems = error.problems
    }
    if (!problems.length) {
      console.log(`config ok: ${configPath}`)
      return ExitCode.OK
    }
    for (const problem of problems) console.log(problem)
    console.error(`❌ Invalid config ${configPath}: ${problems.length === 1 ? '1 problem' : `${problems.length} problems`}`)
    return ExitCode.FAILURE
  },
})
