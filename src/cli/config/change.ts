import { JsonEditError, writeConfigText } from '../../config/edit'
import { readConfigText, readRawConfig } from '../../config/load'
import { diffConfig } from '../../config/reload'
import { CliError, ExitCode } from '../../errors'
import { findGateway } from '../../lifecycle/control'
import { checkConfig, isAtOrUnder } from './check'
import { applyToGateway, listenerOf } from './reload'

/** The config file's text and its JSON, or null when there is no file. Anything that is not a JSON object is a ConfigError. */
export function readConfigFile(path: string): { text: string; raw: Record<string, unknown> } | null {
  const text = readConfigText(path)
  if (text === null) return null
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {}
  // The loader's own reading says precisely what is wrong (comments, trailing commas, not an object).
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) readRawConfig(path)
  return { text, raw: raw as Record<string, unknown> }
}

export interface Change {
  /** the key path changed, as problems name it (formatPath) */
  at: string
  /** the new text of the file (from `{}` when there is none), or null when there is nothing to change */
  edit: (text: string) => string | null
  /** what was done, once written: `agent.model = "…"` */
  done: () => string
  /** the sentence when `edit` finds nothing to change */
  nothing?: string
  /** a hint appended to a refusal, e.g. to use --json */
  hint?: () => string
}

/** Written by another program while we edited: read it again, up to this many times. */
const ATTEMPTS = 3

/**
 * Edits the config file of `configFlag` and tells its running gateway. The new text is checked first and written
 * only when it adds no problem and the changed key has none (problems the file already had elsewhere do not
 * stop a change, so a broken file can be fixed one key at a time; they are listed). The write is atomic and
 * 0600; the file is read again just before, so a concurrent change is not overwritten.
 */
export async function changeConfig(configFlag: string | undefined, change: Change): Promise<number> {
  const target = findGateway(configFlag)
  const path = target.paths.configPath
  // Before the file changes: a change of gateway.auth.token would otherwise make us ask with the new token.
  const listener = listenerOf(target)
  for (let attempt = 1; ; attempt++) {
    const file = readConfigFile(path)
    let next: string | null
    try {
      next = change.edit(file?.text ?? '{}\n')
    } catch (error) {
      if (error instanceof JsonEditError) throw new CliError(`${error.message}; ${path} was not changed.`)
      throw error
    }
    if (next === null) {
      console.log(`ℹ️ ${change.nothing ?? 'Nothing to change.'}`)
      return ExitCode.OK
    }
    const before = checkConfig(file?.raw ?? {}, process.env)
    const after = checkConfig(JSON.parse(next), process.env)
    const known = new Set(before.problems.map((p) => p.text))
    const refused = after.problems.filter((p) => isAtOrUnder(p.path, change.at) || !known.has(p.text))
    if (refused.length) {
      throw new CliError(`${refused.map((p) => p.text).join('; ')}${change.hint?.() ?? ''}. ${path} was not changed.`)
    }
    if ((readConfigText(path) ?? null) !== (file?.text ?? null)) {
      if (attempt < ATTEMPTS) continue
      throw new CliError(`${path} keeps changing while it is edited; ${path} was not changed. Try again.`)
    }
    writeConfigText(path, next)
    console.log(`✅ ${change.done()} (${path})`)
    for (const unset of after.unsetVariables) if (isAtOrUnder(unset.path, change.at)) console.log(`ℹ️ ${unset.text} here; the gateway needs it in its environment.`)
    const elsewhere = after.problems.filter((p) => !isAtOrUnder(p.path, change.at))
    if (elsewhere.length) {
      console.error(`⚠️ ${path} still has ${elsewhere.length === 1 ? 'a problem' : `${elsewhere.length} problems`} elsewhere, so the gateway will not start with it:`)
      for (const problem of elsewhere) console.error(`  ${problem.text}`)
    }
    const local = before.config && after.config ? diffConfig(before.config, after.config) : null
    return (await applyToGateway(listener, local)) ? ExitCode.OK : ExitCode.FAILURE
  }
}
