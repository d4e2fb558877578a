import { join } from 'node:path'
import type { Env, Paths } from '../../config/paths'

/** How one check came out: `ok` (also a check that does not apply, see `skipped`), `warn` or `fail`. */
export type CheckStatus = 'ok' | 'warn' | 'fail'

export interface Check {
  /** stable name: `config`, `database`, `provider.openai`, `channel.telegram`, … */
  id: string
  status: CheckStatus
  /** one line: what was found */
  summary: string
  /** one line: what to do about it (every warn and fail has one) */
  fix?: string
  /** the check does not apply here (no channels, no service manager): shown as such, counts as ok */
  skipped?: boolean
}

export const ok = (id: string, summary: string): Check => ({ id, status: 'ok', summary })
export const warn = (id: string, summary: string, fix: string): Check => ({ id, status: 'warn', summary, fix })
export const fail = (id: string, summary: string, fix: string): Check => ({ id, status: 'fail', summary, fix })
export const skip = (id: string, summary: string): Check => ({ id, status: 'ok', summary, skipped: true })

/** What the checks depend on, passed in so that none of them reads a global. */
export interface DoctorContext {
  env: Env
  platform: NodeJS.Platform
  /** `--config` */
  configFlag?: string | undefined
  /** the time limit of each network request, in ms */
  timeoutMs: number
  /** epoch ms */
  now: () => number
  /** this user's id (null where there are none, Windows) */
  uid: number | null
}

/** `0644` */
export const octal = (mode: number) => `0${(mode & 0o777).toString(8).padStart(3, '0')}`


/** A path as one shell word, quoted only when it needs to be (a fix is meant to be pasted). */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_/.:@%+=,~-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

/** `xopcbot <words>`, with `--config` when the config is not the default one, so that it acts on the same gateway. */
export function cliCommand(paths: Paths, words: string): string {
  const isDefault = paths.configPath === join(paths.home, 'config.json')
  return `xopcbot ${words}${isDefault ? '' : ` --config ${shellWord(paths.configPath)}`}`
}
