import { Elysia, ValidationError } from 'elysia'
import { z } from 'zod'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { storageFaultOf } from '../storage/faults'
import { describeIssues } from '../validation'
import { methodNotAllowed, type MethodsOf } from './methods'
import { factsOf } from './request-id'
import { pathOf } from './request-gate'

/** The zod issues behind one of Elysia's validation errors, as sentences that name the field. */
function describeValidation(error: ValidationError): string {
  const validator = error.validator as { schema?: unknown } | undefined
  const schema = validator instanceof z.ZodType ? validator : validator?.schema instanceof z.ZodType ? validator.schema : null
  if (schema) {
    const result = schema.safeParse(error.value, { reportInput: true })
    if (!result.success) {
      // Body fields are named alone (`message: is required`), the body itself as "body"; query and path
      // parameters with their place (`query.lines: must be at most 5000`).
      return result.error.issues
        .flatMap((issue) => describeIssues([issue], error.type !== 'body' || (issue.path.length === 0 && issue.code !== 'unrecognized_keys') ? [error.type] : [], { input: error.value, noun: 'field' }))
        .join('; ')
    }
  }
  const first = error.all[0] as { path?: string; message?: string } | undefined
  return `${error.type}: ${first?.message ?? 'is invalid'}`
}

const ELYSIA_CODES: Record<string, AppError['code']> = {
  NOT_FOUND: 'NOT_FOUND',
  PARSE: 'INVALID_REQUEST',
  INVALID_COOKIE_SIGNATURE: 'INVALID_REQUEST',
  INVALID_FILE_TYPE: 'INVALID_REQUEST',
}

const STORAGE_HINTS: Record<string, string> = {
  FULL: 'the disk is full',
  READONLY: 'the database is read-only',
  IOERR: 'an I/O error',
  BUSY: 'another process holds the database lock',
  LOCKED: 'the database is locked',
  CANTOPEN: 'the database file cannot be opened',
}

/**
 * The one answer to a transient storage fault (read-only or full disk, I/O error, a held lock), wherever in a
 * request it surfaces — a route, a turn's history write, a streamed turn: 503, nothing was stored, retry.
 */
export function storageUnavailable(code: string): AppError {
  return new AppError('UNAVAILABLE', `the database cannot be used right now (${code}: ${STORAGE_HINTS[code.split('_')[1]!] ?? 'a storage fault'}); nothing was stored, retry later`)
}

/** Maps anything thrown while handling a request to an AppError; unexpected errors become a generic 500. */
export function toAppError(code: string | number, error: unknown, request?: Request): { appError: AppError; unexpected: boolean } {
  // An INTERNAL_ERROR of the family (a CliError about the program, not the request) stays opaque and is logged.
  if (error instanceof AppError) return error.code === 'INTERNAL_ERROR' ? { appError: INTERNAL, unexpected: true } : { appError: error, unexpected: false }
  // Elysia wraps whatever a parser throws in a ParseError; ours throws AppErrors that say what is wrong.
  if (code === 'PARSE' && error instanceof Error && error.cause instanceof AppError) return { appError: error.cause, unexpected: false }
  if (error instanceof ValidationError) return { appError: new AppError('INVALID_REQUEST', describeValidation(error)), unexpected: false }
  const storageCode = storageFaultOf(error)
  if (storageCode) return { appError: storageUnavailable(storageCode), unexpected: true }
  if (typeof code === 'string' && code in ELYSIA_CODES) {
    const mapped = ELYSIA_CODES[code]!
    const message = mapped !== 'NOT_FOUND' ? 'the request could not be parsed' : request ? `no route for ${request.method} ${pathOf(request.url)}` : 'no such route'
    return { appError: new AppError(mapped, message), unexpected: false }
  }
  return { appError: new AppError('INTERNAL_ERROR', 'an unexpected error occurred; details are in the gateway log'), unexpected: true }
}

/**
 * What a stream reports when its work fails after the response has begun (an SSE `error` event): the same
 * mapping as the error handler, so a storage fault is UNAVAILABLE there too; unexpected errors are logged.
 */
export function streamError(error: unknown, log: Logger, requestId?: string, redact: (text: string) => string = (text) => text): AppError {
  const { appError, unexpected } = toAppError('STREAM', error)
  if (unexpected) log.withTag('http').error('unexpected error in a stream', { requestId, err: error })
  const message = redact(appError.message)
  return message === appError.message ? appError : new AppError(appError.code, message, { status: appError.status, headers: appError.headers })
}

const INTERNAL = new AppError('INTERNAL_ERROR', 'an unexpected error occurred; details are in the gateway log')

/** The error envelope (SPEC §6) of anything thrown while handling a request; unexpected errors are logged. */
export function errorEnvelope(
  code: string | number,
  error: unknown,
  request: Request,
  httpLog: Logger,
  redact: (text: string) => string,
): { status: number; headers: Record<string, string>; body: { error: { code: string; message: string } } } {
  let appError = INTERNAL
  try {
    const mapped = toAppError(code, error, request)
    appError = mapped.appError
    if (mapped.unexpected) {
      const facts = factsOf(request)
      httpLog.error('unexpected error', { requestId: facts?.id, method: request.method, path: facts?.path ?? pathOf(request.url), err: error })
    }
  } catch (failure) {
    try {
      httpLog.error('the error handler failed', { err: failure })
    } catch {}
  }
  return { status: appError.status, headers: appError.headers, body: { error: { code: appError.code, message: redact(appError.message) } } }
}

/** No route took the request: a path that other methods are served for is a 405 that names them (RFC 9110 §15.5.6). */
function unroutedError(error: unknown, request: Request, methodsOf: MethodsOf): unknown {
  if (error instanceof AppError) return error
  try {
    const path = pathOf(request.url)
    const allowed = methodsOf(path)
    return allowed && !allowed.includes(request.method) ? methodNotAllowed(request.method, path, allowed) : error
  } catch {
    return error
  }
}

/**
 * Registered first and globally: every error, Elysia's own included, leaves as
 * `{ error: { code, message } }` (SPEC §6), its message stripped of every configured secret. Details of
 * unexpected errors go to the log only. `methodsOf` tells a wrong method on a known path (405) from an unknown
 * path (404). It never throws: a throwing error handler would make Elysia answer a plain-text 500.
 */
export function errorHandler(log: Logger, redact: (text: string) => string = (text) => text, methodsOf: MethodsOf = () => null) {
  const httpLog = log.withTag('http')
  return new Elysia({ name: 'error-handler' }).onError({ as: 'global' }, function sendErrorEnvelope({ code, error, request, set }) {
    const envelope = errorEnvelope(code, code === 'NOT_FOUND' ? unroutedError(error, request, methodsOf) : error, request, httpLog, redact)
    set.status = envelope.status
    Object.assign(set.headers, envelope.headers)
    return envelope.body
  })
}
