import { defineCommand } from 'citty'
import { existsSync } from 'node:fs'
import { resolvePaths } from '../../config/paths'
import { ExitCode } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'

export default defineCommand({
  meta: { name: 'path', description: 'Print the path of the config file in use (--config, else $XOPCBOT_CONFIG, else ~/.xopcbot/config.json). Example: xopcbot config path' },
  args: configArg,
  run({ args, rawArgs }) {
    const flags = parseFlags(configArg, args, rawArgs, { config: PathFlag.optional() })
    const { configPath } = resolvePaths({ env: process.env, configFlag: flags.config })
    console.log(configPath)
    if (!existsSync(configPath)) console.error('ℹ️ The file does not exist yet: every setting has its default (xopcbot config set creates it).')
    return ExitCode.OK
  },
})
