import { defineCommand } from 'citty'
import { z } from 'zod'
import { generateToken, rawToken, updateConfigFile } from '../../config/write'
import { CliError, ExitCode } from '../../errors'
import { effectiveToken, findGateway, sendControl, TOKEN_NEEDS } from '../../lifecycle/control'
import { hasTokenArg, readKeptToken } from '../../lifecycle/lock'
import { localUrl } from '../../net/url'
import { configArg, parseFlags, PathFlag } from '../args'

const args = { ...configArg, rotate: { type: 'boolean', description: 'Make a new token, save it in the config and apply it to the running gateway' } } as const

export default defineCommand({
  meta: { name: 'token', description: 'Print the API token; --rotate makes a new one and applies it without a restart' },
  args,
  async run({ args: parsed, rawArgs }) {
    const flags = parseFlags(args, parsed, rawArgs, { config: PathFlag.optional(), rotate: z.boolean().optional() })
    const target = findGateway(flags.config)
    const running = target.state.state === 'running' ? target.state.info : null

    if (!flags.rotate) {
      const token = effectiveToken(target.paths, running)
      if (!token) {
        console.error('❌ No API token is configured. Create one with: xopcbot gateway token --rotate')
        return ExitCode.FAILURE
      }
      console.log(token)
      return ExitCode.OK
    }

    if (process.env.XOPCBOT_GATEWAY_TOKEN) throw new CliError('The token comes from XOPCBOT_GATEWAY_TOKEN; change it there (rotate refuses to write a token the environment would override).')
    if (running && hasTokenArg(running.argv)) {
      throw new CliError(`The running gateway (pid ${running.pid}) was started with --token; restart it without --token before rotating.`)
    }
    if (running?.argv.some((a) => a === '--token-file' || a.startsWith('--token-file='))) {
      throw new CliError(`The running gateway (pid ${running.pid}) was started with --token-file; write the new token into that file and restart it (rotate refuses to write a token the file would override).`)
    }
    if (running && readKeptToken(target.lockPath, running)) {
      throw new CliError(`The running gateway (pid ${running.pid}) takes its token from XOPCBOT_GATEWAY_TOKEN in its environment; change it there, or restart the gateway without it before rotating.`)
    }
    const current = rawToken(target.paths.configPath)
    if (typeof current === 'string' && current.includes('${')) {
      throw new CliError(`gateway.auth.token in ${target.paths.configPath} is ${current}; change that variable instead.`)
    }

    const token = generateToken()
    // Only the token is read and written: a ${VAR} elsewhere (a channel's token, say) stays as written and need
    // not be set in this shell.
    updateConfigFile(
      target.paths.configPath,
      process.env,
      (raw) => {
        raw.gateway ??= {}
        raw.gateway.auth ??= {}
        raw.gateway.auth.token = token
      },
      { needs: TOKEN_NEEDS },
    )
    console.log(`✅ New API token saved in ${target.paths.configPath}:`)
    console.log(token)
    if (running) {
      const applied = await sendControl(localUrl(running), running.nonce, 'reload-token')
      if (!applied) throw new CliError(`Saved, but the running gateway (pid ${running.pid}) could not be told; restart it: xopcbot gateway restart`)
      console.log(`Applied to the running gateway (pid ${running.pid}); the old token no longer works.`)
    } else console.log('The gateway is not running; it will use this token when it starts.')
    return ExitCode.OK
  },
})
