import { openSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { z } from 'zod'
import { AppError, CliError, ConfigError, ExitCode } from '../errors'
import { ensurePrivateDir } from '../storage/private-files'
import { replaceAtomic, writeFileAtomic } from '../util/atomic-write'

// Two small files beside a gateway's lock (0600 in the 0700 locks directory) let `gateway restart` report at
// once what happened instead of waiting for a gateway that will not come:
// - `gateway.<hash>.restart`: the running gateway's answer to a restart request (SIGUSR1 or the control
//   route): refused (the new config does not load: nothing was touched) or failed (the new process or the
//   rebuilt gateway did not start: it carries on as before). Tied to the lock by its nonce.
// - `gateway.<hash>.stderr`: the standard error of a gateway started in the background (by `restart` or a
//   respawn). Such a gateway writes its log only to the log file, so this file holds only what a failed start
//   prints (its one-sentence error) or a crash: the error `restart` shows when the new process exits.

const base = (lockPath: string) => lockPath.replace(/\.lock$/, '')

export function restartResultPathFor(lockPath: string): string {
  return `${base(lockPath)}.restart`
}

export function stderrPathFor(lockPath: string): string {
  return `${base(lockPath)}.stderr`
}

/** Replaces `path` atomically with `text` (private temp file, then rename). */
function writePrivate(path: string, text: string) {
  ensurePrivateDir(dirname(path))
  writeFileAtomic(path, text, { mode: 0o600 })
}

export const RestartResult = z.object({
  /** the lock nonce of the gateway that was asked to restart */
  nonce: z.string().min(1),
  /** counts the restart requests this process handled: tells this answer from an earlier one */
  seq: z.int().positive(),
  /** refused: the new config does not load and nothing was touched; failed: the new gateway did not start */
  state: z.enum(['refused', 'failed']),
  /** the error as a start prints it: one sentence */
  message: z.string(),
  exitCode: z.int(),
  /** for a config error, its parts, so the CLI prints it exactly as a start does */
  config: z.object({ source: z.string(), problems: z.array(z.string()) }).optional(),
  /** the process that failed (a respawned successor), when it is not the gateway itself */
  pid: z.int().positive().optional(),
  /** whether the gateway that was asked carries on (unchanged, or again with its previous config) */
  stillRunning: z.boolean(),
})
export type RestartResult = z.infer<typeof RestartResult>

export function writeRestartResult(lockPath: string, result: RestartResult) {
  writePrivate(restartResultPathFor(lockPath), JSON.stringify(result) + '\n')
}

export function readRestartResult(lockPath: string): RestartResult | null {
  try {
    const parsed = RestartResult.safeParse(JSON.parse(readFileSync(restartResultPathFor(lockPath), 'utf8')))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

/** The parts of an error a restart result records. */
export function describeFailure(error: unknown): Pick<RestartResult, 'message' | 'exitCode' | 'config'> {
  if (error instanceof ConfigError) return { message: error.message, exitCode: error.exitCode, config: { source: error.source, problems: error.problems } }
  if (error instanceof AppError) return { message: error.message, exitCode: error.exitCode }
  return { message: error instanceof Error ? error.message : String(error), exitCode: ExitCode.FAILURE }
}

/** The error a restart result describes, as the CLI throws it (a config error prints as a start prints it). */
export function errorOf(result: Pick<RestartResult, 'message' | 'exitCode' | 'config'>): CliError {
  return result.config ? new ConfigError(result.config.source, result.config.problems) : new CliError(result.message, result.exitCode)
}

/**
 * A fresh stderr file for a gateway about to be started in the background; returns its descriptor for the
 * child's stdio. Made under a temp name and renamed into place, so a gateway still writing to the previous
 * file keeps its own and the file read later is this child's.
 */
export function openStderrFile(lockPath: string): number {
  const path = stderrPathFor(lockPath)
  ensurePrivateDir(dirname(path))
  return replaceAtomic(path, (temp) => openSync(temp, 'wx', 0o600))
}

/**
 * The first error in what a failed start printed: the CLI's one-sentence `❌ …` line, else the runtime's
 * `error: …` line of a crash, else the first line. Null when it printed nothing.
 */
export function firstError(text: string): string | null {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
  const line = lines.find((l) => l.startsWith('❌')) ?? lines.find((l) => /^(error|[A-Z]\w*Error)\b/.test(l)) ?? lines[0]
  return line ? line.replace(/^❌\s*/, '').slice(0, 1000) : null
}

/** The first error in the stderr file of the background gateway of `lockPath`. */
export function readFirstError(lockPath: string): string | null {
  try {
    return firstError(readFileSync(stderrPathFor(lockPath), 'utf8'))
  } catch {
    return null
  }
}
