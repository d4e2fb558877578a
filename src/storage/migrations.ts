import type { Database } from 'bun:sqlite'

/**
 * Schema migrations, applied in order; `PRAGMA user_version` holds how many have run. Never edit a
 * migration that has shipped: add a new one.
 *
 * Planned layout (tables arrive with the feature that uses them):
 * - `state`            small key/value state of subsystems (e.g. `telegram:offset`)          — 1
 * - `sessions`, `session_messages`   conversation history per session key                     — 2
 * - `inbound_messages` the durable inbound queue (queued → processing → delivered | failed)    — 3
 * - `cron_jobs`, `cron_runs`          scheduled jobs and their run history                     — 4
 * - `pairing_requests`, `pairing_approvals`  chat senders waiting for / granted access (pairing)  — 5
 * - `webhook_events`   signed webhook events seen recently (replay protection)                 — 5
 * - `turn_usage`       tokens per answered turn; `session_messages.model`                      — 6
 */
export const migrations: ReadonlyArray<(db: Database) => void> = [
  (db) => {
    db.run(`CREATE TABLE state (
      key        TEXT PRIMARY KEY,
      value      TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) STRICT`)
  },
  (db) => {
    db.run(`CREATE TABLE sessions (
      key        TEXT PRIMARY KEY,
      channel    TEXT,
      chat_id    TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) STRICT`)
    db.run('CREATE INDEX sessions_by_update ON sessions (updated_at DESC, key)')
    // `content` is the text shown to people; `message` the model message (JSON) replayed to the model.
    db.run(`CREATE TABLE session_messages (
      id            INTEGER PRIMARY KEY AUTOINCREMENT,
      session_key   TEXT NOT NULL REFERENCES sessions (key) ON DELETE CASCADE,
      role          TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
      content       TEXT NOT NULL,
      message       TEXT NOT NULL,
      input_tokens  INTEGER,
      output_tokens INTEGER,
      created_at    TEXT NOT NULL
    ) STRICT`)
    db.run('CREATE INDEX session_messages_by_session ON session_messages (session_key, id)')
  },
  (db) => {
    // `state` adds 'delivering' to the states clients see: a reply being handed to the channel. A message
    // found in that state after a crash is marked failed, never sent again (at most once).
    db.run(`CREATE TABLE inbound_messages (
      seq          INTEGER PRIMARY KEY AUTOINCREMENT,
      id           TEXT NOT NULL UNIQUE,
      channel      TEXT NOT NULL,
      chat_id      TEXT NOT NULL,
      content      TEXT NOT NULL,
      sender       TEXT,
      source       TEXT NOT NULL,
      external_id  TEXT,
      state        TEXT NOT NULL CHECK (state IN ('queued', 'processing', 'delivering', 'delivered', 'failed')),
      reply        TEXT,
      error        TEXT,
      delivered_id TEXT,
      created_at   TEXT NOT NULL,
      updated_at   TEXT NOT NULL,
      UNIQUE (channel, external_id)
    ) STRICT`)
    db.run(`CREATE INDEX inbound_messages_pending ON inbound_messages (state, seq) WHERE state IN ('queued', 'processing', 'delivering')`)
  },
  (db) => {
    db.run(`CREATE TABLE cron_jobs (
      id         TEXT PRIMARY KEY,
      name       TEXT NOT NULL,
      schedule   TEXT NOT NULL,
      timezone   TEXT NOT NULL,
      enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
      mode       TEXT NOT NULL CHECK (mode IN ('agent', 'direct')),
      message    TEXT NOT NULL,
      channel    TEXT,
      chat_id    TEXT,
      session    TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) STRICT`)
    db.run(`CREATE TABLE cron_runs (
      seq         INTEGER PRIMARY KEY AUTOINCREMENT,
      id          TEXT NOT NULL UNIQUE,
      job_id      TEXT NOT NULL REFERENCES cron_jobs (id) ON DELETE CASCADE,
      trigger     TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'catch-up')),
      status      TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
      started_at  TEXT NOT NULL,
      finished_at TEXT,
      reply       TEXT,
      error       TEXT
    ) STRICT`)
    db.run('CREATE INDEX cron_runs_by_job ON cron_runs (job_id, seq DESC)')
  },
  (db) => {
    // One pending request per sender and channel; its code is what the owner approves.
    db.run(`CREATE TABLE pairing_requests (
      channel    TEXT NOT NULL,
      sender_id  TEXT NOT NULL,
      code       TEXT NOT NULL UNIQUE,
      username   TEXT,
      chat_id    TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      PRIMARY KEY (channel, sender_id)
    ) STRICT`)
    db.run(`CREATE TABLE pairing_approvals (
      channel     TEXT NOT NULL,
      sender_id   TEXT NOT NULL,
      username    TEXT,
      approved_at TEXT NOT NULL,
      PRIMARY KEY (channel, sender_id)
    ) STRICT`)
    // Event ids (or signatures) of accepted webhook events; `received_at` is epoch ms, pruned after the window.
    db.run(`CREATE TABLE webhook_events (
      channel     TEXT NOT NULL,
      event_id    TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      PRIMARY KEY (channel, event_id)
    ) STRICT`)
    db.run('CREATE INDEX webhook_events_by_time ON webhook_events (received_at)')
  },
  (db) => {
    // The model ("<provider>/<model id>") that wrote an assistant message; null for older rows and other roles.
    db.run('ALTER TABLE session_messages ADD COLUMN model TEXT')
    // Tokens per answered turn, for /api/usage and the daily budget. No reference to `sessions`: deleting a
    // conversation does not undo what it used. `at` is an ISO time in UTC.
    db.run(`CREATE TABLE turn_usage (
      id            INTEGER PRIMARY KEY AUTOINCREMENT,
      at            TEXT NOT NULL,
      session_key   TEXT NOT NULL,
      channel       TEXT,
      model         TEXT NOT NULL,
      input_tokens  INTEGER NOT NULL,
      output_tokens INTEGER NOT NULL
    ) STRICT`)
    db.run('CREATE INDEX turn_usage_by_time ON turn_usage (at)')
  },
]

/** The database has more migrations than this version knows: it was written by a newer xopcbot. */
export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError'
}

export function migrate(db: Database) {
  const current = (db.query('PRAGMA user_version').get() as { user_version: number }).user_version
  if (current > migrations.length) {
    throw new SchemaTooNewError(`was written by a newer xopcbot (schema ${current}, this version knows ${migrations.length})`)
  }
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      migrations[version]!(db)
      db.run(`PRAGMA user_version = ${version + 1}`)
    }).immediate()
  }
}
