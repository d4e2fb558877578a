import { defineCommand } from 'citty'
import { resolve } from 'node:path'
import { z } from 'zod'
import { loadConfig } from '../config/load'
import { resolvePaths } from '../config/paths'
import { ExitCode } from '../errors'
import { BACKUP_NEEDS, createBackup } from '../ops/backup'
import { configArg, parseFlags, PathFlag } from './args'
import { formatBytes } from '../util/bytes'

const args = {
  ...configArg,
  out: { type: 'string', description: 'Write the archive here (default: <dataDir>/backups/xopcbot-<UTC time>.tar.gz)', valueHint: 'file' },
  'include-secrets': { type: 'boolean', description: 'Keep the API token, API keys, channel tokens and MCP env/header values in the archived config (default: replaced by a placeholder)' },
  json: { type: 'boolean', description: 'Machine-readable output' },
} as const


/** `xopcbot backup`: the database (a consistent snapshot, also while the gateway runs) and the config in one archive. */
export default defineCommand({
  meta: { name: 'backup', description: 'Back up the database and the config into one .tar.gz (works while the gateway runs)' },
  args,
  async run({ args: given, rawArgs }) {
    const flags = parseFlags(args, given, rawArgs, {
      config: PathFlag.optional(),
      out: PathFlag.optional(),
      includeSecrets: z.boolean().optional(),
      json: z.boolean().optional(),
    })
    // The archive, and the snapshot on its way into it, are private like the database itself.
    process.umask(0o077)
    const paths = resolvePaths({ env: process.env, configFlag: flags.config })
    const { config } = loadConfig(paths.configPath, process.env, { needs: BACKUP_NEEDS })
    const result = await createBackup({ configPath: paths.configPath, config, out: flags.out ? resolve(flags.out) : undefined, includeSecrets: !!flags.includeSecrets })
    const { manifest } = result
    if (flags.json) {
      console.log(JSON.stringify({ status: 'ok', path: result.path, size: result.size, ms: result.ms, secrets_included: manifest.secrets_included, secrets_removed: manifest.secrets_removed, schema_version: manifest.schema_version, files: manifest.files }))
      return ExitCode.OK
    }
    console.log(`✅ Backup written: ${result.path} (${formatBytes(result.size)})`)
    console.log(`Database: schema ${manifest.schema_version}; config: ${manifest.files.some((f) => f.name === 'config.json') ? 'included' : 'none (no config file)'}`)
    if (manifest.secrets_removed.length) {
      console.log(`Secrets left out (${manifest.secrets_removed.join(', ')}); use --include-secrets to keep them.`)
    } else if (manifest.secrets_included) console.log('⚠️ The archive holds the config\'s secrets: keep it private.')
    console.log(`Restore with: xopcbot restore ${result.path}`)
    return ExitCode.OK
  },
})
