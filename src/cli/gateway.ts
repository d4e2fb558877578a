import { defineCommand } from 'citty'
import { z } from 'zod'
import { runGateway } from '../lifecycle/run'
import { configArg, HostFlag, parseFlags, PathFlag, PortFlag, serverArgs, TokenFlag } from './args'

const args = { ...serverArgs, ...configArg } as const

export default defineCommand({
  meta: { name: 'gateway', description: 'Run the gateway in the foreground (Ctrl+C stops it)' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, {
      port: PortFlag.optional(),
      host: HostFlag.optional(),
      token: TokenFlag.optional(),
      config: PathFlag.optional(),
    })
    return runGateway({
      env: process.env,
      configFlag: flags.config,
      flags: { port: flags.port, host: flags.host, token: flags.token },
      print: (line) => console.log(line),
    })
  },
})
