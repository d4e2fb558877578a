/**
 * The levels a log line can have, most severe first: the one list (the config schema, the reader and the log
 * filters use it). Its own module so that reading the log does not load the config schema.
 */
export const LINE_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const
