import { statSync } from 'node:fs'
import { loadConfig } from '../../config/load'
import { dataDirOf, resolvePaths, type Paths } from '../../config/paths'
import { Config } from '../../config/schema'
import { ConfigError } from '../../errors'
import { cliCommand, fail, ok, octal, shellWord, skip, warn, type Check, type DoctorContext } from './check'

/** The parts of the config the other checks read, each loaded on its own so that one bad part stops only its checks. */
const SECTIONS = {
  dataDir: ['dataDir'],
  gateway: ['gateway'],
  model: ['agent', 'providers'],
  channels: ['channels'],
} as const
export type Section = keyof typeof SECTIONS

export interface ConfigView {
  paths: Paths
  /** the defaults, with every section that could be read in place */
  config: Config
  /** the sections that could not be read (the `config` check says why) */
  unreadable: Set<Section>
  checks: Check[]
}

const ENV_NOT_SET = /: environment variable (\w+) is not set$/

/**
 * Reads the config the way the gateway does and judges it: valid (`config`), private (`config.mode`). Each part
 * the later checks need is read on its own, so a `${VAR}` that only the gateway's environment sets, or a mistake
 * in `channels`, still lets the database, port and provider be checked.
 */
export function inspectConfig(ctx: DoctorContext): ConfigView {
  const paths = resolvePaths({ env: ctx.env, configFlag: ctx.configFlag })
  const path = paths.configPath
  const checks: Check[] = []
  let exists = false
  try {
    exists = loadConfig(path, ctx.env).exists
    checks.push(ok('config', exists ? `${path} is valid` : `no file at ${path}: the defaults apply`))
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    exists = true
    const unset = error.problems.map((problem) => ENV_NOT_SET.exec(problem)?.[1])
    // Variables are substituted before anything is validated: check the keys without them for mistakes of their own.
    const mistakes = unset.every(Boolean) ? problemsBesides(path, ctx, error.problems) : error.problems
    if (!mistakes.length) {
      // Not a mistake in the file: the gateway may well run with these set (a service does not see this shell, though).
      checks.push(
        warn(
          'config',
          `${path} uses environment variables not set in this shell (${unset.join(', ')}): the checks that need them are skipped`,
          `set ${unset.join(', ')} before running xopcbot doctor; a service does not see your shell's variables: put their values in the file`,
        ),
      )
    } else checks.push(fail('config', `${path}: ${mistakes.join('; ')}`, `edit ${path} and correct the keys named above`))
  }

  const unreadable = new Set<Section>()
  const parts: Partial<Record<Section, Config>> = {}
  for (const [section, needs] of Object.entries(SECTIONS) as [Section, readonly string[]][]) {
    try {
      parts[section] = loadConfig(path, ctx.env, { needs }).config
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      unreadable.add(section)
    }
  }
  const config: Config = {
    ...Config.parse({}),
    ...(parts.dataDir ? { dataDir: parts.dataDir.dataDir } : {}),
    ...(parts.gateway ? { gateway: parts.gateway.gateway } : {}),
    ...(parts.model ? { agent: parts.model.agent, providers: parts.model.providers } : {}),
    ...(parts.channels ? { channels: parts.channels.channels } : {}),
  }

  if (!exists) checks.push(skip('config.mode', 'no config file'))
  else if (ctx.platform === 'win32') checks.push(skip('config.mode', 'file modes do not apply on Windows'))
  else {
    try {
      const mode = statSync(path).mode
      checks.push(
        mode & 0o077
          ? fail('config.mode', `${path} has mode ${octal(mode)}: other users can read it, and it holds the API token and keys`, `run: chmod 600 ${shellWord(path)}`)
          : ok('config.mode', `${octal(mode)}: only you can read it`),
      )
    } catch (error) {
      checks.push(fail('config.mode', `cannot stat ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, `check that this user can read ${path}`))
    }
  }
  return { paths, config, unreadable, checks }
}

/** The problems of the top-level keys that hold none of the variable references of `unsetProblems`. */
function problemsBesides(path: string, ctx: DoctorContext, unsetProblems: string[]): string[] {
  const withVars = new Set(unsetProblems.map((problem) => problem.split(/[.[:]/)[0]!))
  try {
    loadConfig(path, ctx.env, { needs: Object.keys(Config.shape).filter((key) => !withVars.has(key)) })
    return []
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    return error.problems
  }
}

/** The data directory: it exists, is yours, and nobody else can write (or better, list) it. */
export function checkDataDir(ctx: DoctorContext, view: ConfigView): Check {
  if (view.unreadable.has('dataDir')) return skip('dataDir', 'dataDir cannot be read from the config (see config)')
  const dir = dataDirOf(view.config, view.paths.configPath, ctx.env.HOME)
  let stat
  try {
    stat = statSync(dir)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return warn('dataDir', `${dir} does not exist yet: the gateway creates it (0700) at its first start`, `run: ${cliCommand(view.paths, 'gateway')}`)
    return fail('dataDir', `cannot stat ${dir} (${code ?? (error as Error).message})`, `check that this user can reach ${dir}`)
  }
  if (!stat.isDirectory()) return fail('dataDir', `${dir} is not a directory`, `move it aside (or set dataDir in ${view.paths.configPath} to a directory)`)
  if (ctx.platform === 'win32' || ctx.uid === null) return ok('dataDir', dir)
  if (stat.uid !== ctx.uid) {
    return fail('dataDir', `${dir} belongs to uid ${stat.uid}, not to you (uid ${ctx.uid}): the gateway cannot keep its files private`, `run: sudo chown -R ${ctx.uid} ${shellWord(dir)}`)
  }
  if (stat.mode & 0o022) return fail('dataDir', `${dir} has mode ${octal(stat.mode)}: other users can add or replace files in it`, `run: chmod 700 ${shellWord(dir)}`)
  if (stat.mode & 0o055) return warn('dataDir', `${dir} has mode ${octal(stat.mode)}: other users can list it (its files are private)`, `run: chmod 700 ${shellWord(dir)}`)
  return ok('dataDir', `${dir}: yours, ${octal(stat.mode)}`)
}
