import { createHash } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import type { Config } from './schema'

export type Env = Record<string, string | undefined>

export interface Paths {
  /** `~/.xopcbot`, or XOPCBOT_HOME */
  home: string
  /** the config file (it may not exist) */
  configPath: string
  locksDir: string
  binDir: string
}

export interface PathsInput {
  env: Env
  /** `--config` */
  configFlag?: string | undefined
  cwd?: string
  homeDir?: string
}

function expandHome(path: string, homeDir: string) {
  return path === '~' || path.startsWith('~/') ? join(homeDir, path.slice(1)) : path
}

/** Every path the program uses comes from here (SPEC §2): `--config`, then XOPCBOT_CONFIG, then `<home>/config.json`. */
export function resolvePaths({ env, configFlag, cwd = process.cwd(), homeDir = env.HOME || homedir() }: PathsInput): Paths {
  const home = resolve(cwd, expandHome(env.XOPCBOT_HOME || join(homeDir, '.xopcbot'), homeDir))
  const configSource = configFlag || env.XOPCBOT_CONFIG
  const configPath = configSource ? resolve(cwd, expandHome(configSource, homeDir)) : join(home, 'config.json')
  return { home, configPath, locksDir: join(home, 'locks'), binDir: join(home, 'bin') }
}

/** The data directory: `dataDir` from the config (relative to the config file), else the config's directory. */
export function dataDirOf(config: Config, configPath: string, homeDir = process.env.HOME || homedir()): string {
  if (!config.dataDir) return dirname(configPath)
  const dir = expandHome(config.dataDir, homeDir)
  return isAbsolute(dir) ? dir : resolve(dirname(configPath), dir)
}

export function databasePathOf(dataDir: string) {
  return join(dataDir, 'xopcbot.db')
}

export function logFileOf(config: Config, dataDir: string, homeDir = process.env.HOME || homedir()) {
  if (!config.logging.file) return join(dataDir, 'logs', 'gateway.log')
  const file = expandHome(config.logging.file, homeDir)
  return isAbsolute(file) ? file : resolve(dataDir, file)
}

/**
 * The canonical spelling of a config path: absolute, symlinks resolved (as far as they exist),
 * lower-cased where the file system is case-insensitive by default. Two spellings of one file give one value.
 */
export function canonicalConfigPath(path: string, platform: NodeJS.Platform = process.platform): string {
  let canonical = resolve(path)
  try {
    canonical = realpathSync.native(canonical)
  } catch {
    // The file does not exist yet: resolve the directory instead, so "dir/../config.json" and "config.json" agree.
    try {
      canonical = join(realpathSync.native(dirname(canonical)), canonical.slice(dirname(canonical).length + 1))
    } catch {}
  }
  return platform === 'win32' || platform === 'darwin' ? canonical.toLowerCase() : canonical
}

/** First 16 hex characters of the SHA-256 of the canonical config path: names the lock (and service) of a config. */
export function configHash(canonicalPath: string): string {
  return createHash('sha256').update(canonicalPath).digest('hex').slice(0, 16)
}
