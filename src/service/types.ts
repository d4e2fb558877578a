import { CliError } from '../errors'
import { readFileSync } from 'node:fs'
/** One way to run a command: argument arrays only, never a shell. */
export type CommandRunner = (command: string[], options?: { input?: string }) => Promise<{ code: number; stdout: string; stderr: string }>

export const runCommand: CommandRunner = async (command, options = {}) => {
  try {
    // Resolved against the current PATH (Bun.spawn alone would use the PATH the process started with).
    const executable = Bun.which(command[0]!, { PATH: process.env.PATH ?? '' })
    if (!executable) return { code: 127, stdout: '', stderr: `${command[0]}: command not found` }
    const proc = Bun.spawn([executable, ...command.slice(1)], { env: process.env, stdin: options.input !== undefined ? new TextEncoder().encode(options.input) : 'ignore', stdout: 'pipe', stderr: 'pipe' })
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    return { code, stdout, stderr }
  } catch (error) {
    return { code: 127, stdout: '', stderr: (error as Error).message }
  }
}

/** What a service entry runs (the same on every platform). */
export interface ServiceSpec {
  /** unit / label / task name */
  name: string
  description: string
  program: string
  args: string[]
  workingDirectory: string
  env: Record<string, string>
  /** how long the manager waits for a graceful stop before killing (ms) */
  stopTimeoutMs: number
  /** where launchd writes stdout/stderr */
  logDir: string
}

export interface ServiceStatus {
  installed: boolean
  state: 'running' | 'stopped' | 'failed' | 'starting' | 'unknown' | 'not-installed'
  pid: number | null
  /** what the installed entry runs, read back from it */
  program: string | null
  args: string[]
  workingDirectory: string | null
  file: string | null
  detail?: string
}

/** The environment a manager works in; passed in so that every platform's logic is testable anywhere. */
export interface ServiceContext {
  platform: NodeJS.Platform
  env: Record<string, string | undefined>
  homeDir: string
  uid: number
  user: string
  run: CommandRunner
}

export interface ServiceManager {
  readonly kind: 'systemd' | 'launchd' | 'schtasks'
  /** null when usable; otherwise what is missing and what to do */
  unavailable(): Promise<string | null>
  /** where the entry lives */
  entryPath(name: string): string
  install(spec: ServiceSpec, options: { start: boolean }): Promise<string[]>
  start(name: string): Promise<void>
  stop(name: string): Promise<void>
  status(name: string): Promise<ServiceStatus>
  uninstall(name: string): Promise<void>
}

/** A service manager's refusal or failure: one sentence for the user (exit 1), like any error of the family. */
export class ServiceError extends CliError {
  override readonly name = 'ServiceError'
}

/** Values go into files other programs parse: a newline would end the entry, so it is refused. */
export function refuseNewlines(spec: ServiceSpec) {
  for (const value of [spec.name, spec.description, spec.program, spec.workingDirectory, ...spec.args, ...Object.entries(spec.env).flat()]) {
    if (/[\r\n\0]/.test(value)) throw new ServiceError(`a value of the service entry contains a line break or NUL, which cannot be written safely: ${JSON.stringify(value)}`)
  }
}

/** The text of an installed entry, or null when there is none. */
export function readEntry(file: string): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return null
  }
}
