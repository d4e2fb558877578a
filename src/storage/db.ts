import { Database } from 'bun:sqlite'
import { existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { CliError, DataError, ExitCode } from '../errors'
import { ensurePrivateDir, ensurePrivateFile } from './private-files'
import { migrate, SchemaTooNewError } from './migrations'

/**
 * Opens (creating if needed) the gateway database: WAL, a busy timeout, foreign keys, an integrity check,
 * migrations. The file is created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
 *
 * A database that is damaged or not a database at all is a DataError (exit 65) that names the file and says how
 * to restore it or move it aside; one that cannot be opened for another reason (permissions, a full disk, a
 * lock) is a CliError (exit 1), since that may pass. Neither is an "unexpected error" with a stack.
 */
export function openDatabase(path: string): Database {
  let db: Database | null = null
  try {
    ensurePrivateDir(dirname(path))
    // Checked before opening: a FIFO would block the open, a directory cannot be one.
    const stat = statOrNull(path)
    if (stat && !stat.isFile()) throw new DataError(damagedMessage(path, `is not a regular file but a ${stat.isDirectory() ? 'directory' : 'special file (FIFO, socket or device)'}`))
    ensurePrivateFile(path)
    db = new Database(path, { create: true, strict: true })
    db.run('PRAGMA journal_mode = WAL')
    db.run('PRAGMA busy_timeout = 5000')
    db.run('PRAGMA foreign_keys = ON')
    // In WAL mode NORMAL is durable across process crashes (kill -9); only a power loss can drop the last commits.
    db.run('PRAGMA synchronous = NORMAL')
    // O(size), so it runs once per open, not per query: damage found now is a clear stop instead of failures later.
    quickCheck(db, path)
    migrate(db)
    return db
  } catch (error) {
    db?.close()
    throw openError(error, path)
  }
}

function statOrNull(path: string) {
  try {
    return statSync(path)
  } catch {
    return null
  }
}

function quickCheck(db: Database, path: string) {
  const rows = db.query('PRAGMA quick_check').values() as unknown[][]
  const problems = rows.map((row) => String(row[0])).filter((line) => line !== 'ok')
  if (problems.length) throw new DataError(damagedMessage(path, `is damaged (integrity check: ${problems[0]}${problems.length > 1 ? `, and ${problems.length - 1} more problems` : ''})`))
}

/** A path as a shell word: quoted only when it needs to be. */
function shellWord(value: string, platform: NodeJS.Platform): string {
  if (platform === 'win32') return /^[A-Za-z0-9_\\/.:@+=,~-]+$/.test(value) ? value : `"${value}"`
  return /^[A-Za-z0-9_/.:@%+=,~-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

/**
 * What to do with a damaged database: restore a backup, or move it (with its -wal and -shm files, which belong to
 * it) aside so that the next start creates an empty one. The command names the files that exist.
 */
export function moveAsideCommand(path: string, platform: NodeJS.Platform = process.platform): string {
  const move = platform === 'win32' ? 'move' : 'mv'
  return ['', '-wal', '-shm']
    .filter((suffix) => suffix === '' || existsSync(path + suffix))
    .map((suffix) => `${move} ${shellWord(path + suffix, platform)} ${shellWord(`${path}.damaged${suffix}`, platform)}`)
    .join(' && ')
}

function damagedMessage(path: string, what: string): string {
  return `The database ${path} ${what}, so the gateway cannot use it: restore it from a backup, or move it aside to start with an empty one (${moveAsideCommand(path)}).`
}

/** SQLite's primary result codes (the low byte of an extended code) that mean something about the file. */
const SQLITE = { PERM: 3, BUSY: 5, LOCKED: 6, READONLY: 8, IOERR: 10, CORRUPT: 11, FULL: 13, CANTOPEN: 14, NOTADB: 26 } as const

/** Turns a failure to open into one sentence (see openDatabase); errors of ours pass through. */
function openError(error: unknown, path: string): unknown {
  if (error instanceof CliError) return error
  if (error instanceof SchemaTooNewError) {
    return new DataError(`The database ${path} ${error.message}: upgrade xopcbot, or restore a backup made by this version.`, { cause: error })
  }
  const errno = (error as { errno?: unknown }).errno
  const sqlite = error instanceof Error && error.name === 'SQLiteError' && typeof errno === 'number' ? errno & 0xff : null
  const message = (error as Error).message
  if (sqlite === SQLITE.NOTADB) return new DataError(damagedMessage(path, 'is not an SQLite database'), { cause: error })
  if (sqlite === SQLITE.CORRUPT) return new DataError(damagedMessage(path, `is damaged (${message})`), { cause: error })
  const code = (error as NodeJS.ErrnoException).code
  const advice =
    sqlite === SQLITE.BUSY || sqlite === SQLITE.LOCKED
      ? 'another process holds a lock on it; stop that process and start again'
      : sqlite === SQLITE.FULL || code === 'ENOSPC'
        ? 'the disk is full; free some space and start again'
        : sqlite === SQLITE.PERM || sqlite === SQLITE.READONLY || sqlite === SQLITE.CANTOPEN || code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'check that this user can read and write it and its directory'
          : 'check the disk and the data directory'
  return new CliError(`Cannot open the database ${path} (${message}); ${advice}.`, ExitCode.FAILURE, { cause: error })
}

/** Key/value state of subsystems (e.g. the Telegram update offset). */
export class StateStore {
  constructor(private readonly db: Database) {}

  get(key: string): string | null {
    const row = this.db.query('SELECT value FROM state WHERE key = ?').get(key) as { value: string } | null
    return row?.value ?? null
  }

  set(key: string, value: string) {
    this.db
      .query('INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
      .run(key, value, new Date().toISOString())
  }
}
