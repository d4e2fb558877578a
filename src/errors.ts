/**
 * One error family for the whole program. Every error we raise on purpose is an `AppError`: it carries a
 * `code`, the HTTP `status` it is sent with and the CLI `exitCode` it ends with. The HTTP layer sends it as the
 * JSON error envelope (SPEC §6); the CLI prints its message as one sentence and exits with `exitCode`.
 * Subclasses exist only where they set other defaults or carry data (ConfigError's source and problems).
 */
export const ErrorCodes = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CHANNEL_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  CONFIG_INVALID: 422,
  RATE_LIMITED: 429,
  AGENT_ERROR: 502,
  DELIVERY_FAILED: 502,
  UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
} as const

export type ErrorCode = keyof typeof ErrorCodes

/** Exit codes of the CLI (SPEC §4). */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NOT_RUNNING: 3,
  /** EX_DATAERR: the gateway's data (its database) is damaged or unreadable; restarting cannot help */
  DATA: 65,
  RESTART: 75,
  CONFIG: 78,
} as const

/** Exit codes after which a service manager must not start the gateway again: only the user can fix the cause. */
export const PERMANENT_EXIT_CODES: ReadonlySet<number> = new Set([ExitCode.DATA, ExitCode.CONFIG])

export interface AppErrorOptions {
  /** HTTP status; default: the code's (ErrorCodes) */
  status?: number
  /** CLI exit code; default: 1 */
  exitCode?: number
  headers?: Record<string, string>
  cause?: unknown
}

export class AppError extends Error {
  override readonly name: string = 'AppError'
  readonly status: number
  readonly exitCode: number
  readonly headers: Record<string, string>

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause })
    this.status = options.status ?? ErrorCodes[code]
    this.exitCode = options.exitCode ?? ExitCode.FAILURE
    this.headers = options.headers ?? {}
  }

  toJSON() {
    return { error: { code: this.code, message: this.message } }
  }
}

/**
 * An error about the program, not a request: code INTERNAL_ERROR, so the server answers it with the generic
 * envelope and logs it, while the CLI prints its sentence and exits with `exitCode`.
 */
export class CliError extends AppError {
  override readonly name: string = 'CliError'
  constructor(message: string, exitCode: number = ExitCode.FAILURE, options: { cause?: unknown } = {}) {
    super('INTERNAL_ERROR', message, { exitCode, ...options })
  }
}

/** A command used wrongly; exit 2, and the CLI points to --help. */
export class UsageError extends CliError {
  override readonly name = 'UsageError'
  constructor(message: string) {
    super(message, ExitCode.USAGE)
  }
}

/**
 * Damaged data, e.g. a database that is not one or fails its integrity check: one sentence with the path, what
 * is wrong and what to do; exit 65 (EX_DATAERR), which installed services do not restart on.
 */
export class DataError extends CliError {
  override readonly name = 'DataError'
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, ExitCode.DATA, options)
  }
}

/** An invalid configuration: names the file, the key path and the problem; exit 78 (EX_CONFIG). */
export class ConfigError extends CliError {
  override readonly name = 'ConfigError'
  /** `source` is "config <path>" for a file, or "environment" for variables. */
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`Invalid ${source}: ${problems.join('; ')}`, ExitCode.CONFIG)
  }
}
