/**
 * One error type for the whole program. The HTTP layer sends it as the JSON error envelope
 * (SPEC §6); the CLI prints its message as one sentence and exits with `exitCode`.
 */
export const ErrorCodes = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CHANNEL_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  AGENT_ERROR: 502,
  DELIVERY_FAILED: 502,
  UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
} as const

export type ErrorCode = keyof typeof ErrorCodes

export class AppError extends Error {
  override readonly name = 'AppError'
  readonly status: number
  readonly headers: Record<string, string>

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { status?: number; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause })
    this.status = options.status ?? ErrorCodes[code]
    this.headers = options.headers ?? {}
  }

  toJSON() {
    return { error: { code: this.code, message: this.message } }
  }
}

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

/** An error the CLI reports as one sentence, then exits with `exitCode`. */
export class CliError extends Error {
  override readonly name: string = 'CliError'
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.FAILURE,
    options: { cause?: unknown } = {},
  ) {
    super(message, options)
  }
}

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
