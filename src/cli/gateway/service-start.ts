import { defineCommand } from 'citty'
import { loadConfig } from '../../config/load'
import { CliError, ExitCode } from '../../errors'
import { waitHealthy } from '../../lifecycle/control'
import { localUrl } from '../../net/url'
import { configArg, parseFlags, PathFlag } from '../args'
import { displayUrl } from '../output'
import { ADDRESS_NEEDS, serviceTarget } from './service-target'

export default defineCommand({
  meta: { name: 'service-start', description: 'Start the installed service through the service manager' },
  args: configArg,
  async run({ args, rawArgs }) {
    const flags = parseFlags(configArg, args, rawArgs, { config: PathFlag.optional() })
    const { manager, paths, name } = serviceTarget(flags.config)
    if (!(await manager.status(name)).installed) throw new CliError(`The service ${name} is not installed; install it with: xopcbot gateway install`)
    await manager.start(name)
    const { config } = loadConfig(paths.configPath, process.env, { needs: ADDRESS_NEEDS })
    if (!(await waitHealthy(localUrl(config.gateway), 30_000))) throw new CliError(`The service ${name} was started, but /health did not answer within 30 s; see: xopcbot gateway logs`)
    console.log(`✅ Service ${name} started`)
    console.log(`URL: ${displayUrl(config.gateway.host, config.gateway.port)}`)
    return ExitCode.OK
  },
})
