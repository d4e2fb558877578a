import { defineCommand } from 'citty'
import { ExitCode } from '../../errors'
import { configArg, parseFlags, PathFlag } from '../args'
import { serviceTarget } from './service-target'

export default defineCommand({
  meta: { name: 'uninstall', description: 'Stop and remove the service; the config and data stay' },
  args: configArg,
  async run({ args, rawArgs }) {
    const flags = parseFlags(configArg, args, rawArgs, { config: PathFlag.optional() })
    const { manager, paths, name } = serviceTarget(flags.config)
    if (!(await manager.status(name)).installed) {
      console.log(`ℹ️ The service ${name} is not installed`)
      return ExitCode.OK
    }
    await manager.uninstall(name)
    console.log(`✅ Service ${name} removed; the config and data are kept (${paths.configPath})`)
    return ExitCode.OK
  },
})
