import { Database } from 'bun:sqlite'
import { dirname } from 'node:path'
import { ensurePrivateDir, ensurePrivateFile } from './files'
import { migrate } from './migrations'

/**
 * Opens (creating if needed) the gateway database: WAL, a busy timeout, foreign keys, migrations.
 * The file is created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
 */
export function openDatabase(path: string): Database {
  ensurePrivateDir(dirname(path))
  ensurePrivateFile(path)
  const db = new Database(path, { create: true, strict: true })
  try {
    db.run('PRAGMA journal_mode = WAL')
    db.run('PRAGMA busy_timeout = 5000')
    db.run('PRAGMA foreign_keys = ON')
    // In WAL mode NORMAL is durable across process crashes (kill -9); only a power loss can drop the last commits.
    db.run('PRAGMA synchronous = NORMAL')
    migrate(db)
  } catch (error) {
    db.close()
    throw error
  }
  return db
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
