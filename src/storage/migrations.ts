import type { Database } from 'bun:sqlite'

/**
 * Schema migrations, applied in order; `PRAGMA user_version` holds how many have run. Never edit a
 * migration that has shipped: add a new one.
 *
 * Planned layout (tables arrive with the feature that uses them):
 * - `state`            small key/value state of subsystems (e.g. `telegram:offset`)          — 1
 * - `sessions`, `session_messages`   conversation history per session key                     — agent
 * - `inbound_messages` the durable inbound queue (queued → processing → delivered | failed)    — channels
 * - `cron_jobs`, `cron_runs`          scheduled jobs and their run history                     — cron
 */
export const migrations: ReadonlyArray<(db: Database) => void> = [
  (db) => {
    db.run(`CREATE TABLE state (
      key        TEXT PRIMARY KEY,
      value      TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) STRICT`)
  },
]

export function migrate(db: Database) {
  const current = (db.query('PRAGMA user_version').get() as { user_version: number }).user_version
  if (current > migrations.length) {
    throw new Error(`the database was written by a newer xopcbot (schema ${current}, this version knows ${migrations.length}); upgrade xopcbot`)
  }
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      migrations[version]!(db)
      db.run(`PRAGMA user_version = ${version + 1}`)
    }).immediate()
  }
}
