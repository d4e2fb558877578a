import { defineCommand } from 'citty'
import { resolve } from 'node:path'
import { z } from 'zod'
import { CliError, ExitCode, UsageError } from '../errors'
import { findGateway, runningGateway } from '../lifecycle/control'
import { restoreBackup } from '../ops/backup'
import { configArg, parseFlags, PathFlag } from './args'

const args = {
  ...configArg,
  file: { type: 'positional', description: 'The backup archive (.tar.gz) written by xopcbot backup', required: true },
  'config-too': { type: 'boolean', description: 'Replace the current config with the one in the backup (default: only when there is none)' },
  json: { type: 'boolean', description: 'Machine-readable output' },
} as const

/** `xopcbot restore FILE`: verified first, then the database (and maybe the config) put back; the gateway must be stopped. */
export default defineCommand({
  meta: { name: 'restore', description: 'Restore a backup (the gateway must be stopped); the current data is kept aside' },
  args,
  async run({ args: given, rawArgs }) {
    const flags = parseFlags(args, given, rawArgs, { config: PathFlag.optional(), configToo: z.boolean().optional(), json: z.boolean().optional() })
    const [file, extra] = given._.filter((word) => word !== '')
    if (!file) throw new UsageError('usage: xopcbot restore <file> [--config-too] [--config PATH]')
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    process.umask(0o077)
    const target = findGateway(flags.config)
    const { info } = runningGateway(target)
    if (info) {
      throw new CliError(`A gateway is running on ${target.paths.configPath} (pid ${info.pid}, port ${info.port}): stop it first (xopcbot gateway stop), then restore. Nothing was changed.`)
    }
    const result = await restoreBackup({ file: resolve(file), configPath: target.paths.configPath, configToo: !!flags.configToo, env: process.env })
    if (flags.json) {
      console.log(
        JSON.stringify({
          status: 'ok',
          database: result.database,
          config: result.config,
          config_path: result.configPath,
          moved_aside: result.asideDir,
          secrets_filled: result.secretsFilled,
          secrets_missing: result.secretsMissing,
          created_at: result.manifest.created_at,
          schema_version: result.manifest.schema_version,
        }),
      )
      return ExitCode.OK
    }
    const { manifest } = result
    console.log(`✅ Restored the backup of ${manifest.created_at} (from ${manifest.hostname}, xopcbot ${manifest.xopcbot_version})`)
    console.log(`Database: ${result.database}`)
    const configLine = {
      restored: `Config: restored to ${result.configPath}`,
      replaced: `Config: replaced ${result.configPath}`,
      kept: `Config: the current ${result.configPath} is kept (--config-too replaces it with the backup's)`,
      absent: 'Config: the backup has none; the current one is kept',
    }[result.config]
    console.log(configLine)
    if (result.secretsFilled.length) console.log(`Secrets taken over from the current config: ${result.secretsFilled.join(', ')}`)
    if (result.secretsMissing.length) {
      console.log(`⚠️ The backup left these secrets out: ${result.secretsMissing.join(', ')}. Fill them in (they read "\${secret-not-in-backup}") before starting the gateway.`)
    }
    if (result.asideDir) console.log(`The previous data was moved to ${result.asideDir}`)
    console.log('Start the gateway: xopcbot gateway')
    return ExitCode.OK
  },
})
