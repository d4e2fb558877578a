import { describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, StateStore } from '../src/storage/db'
import { migrations } from '../src/storage/migrations'

const mode = (path: string) => statSync(path).mode & 0o777

describe('openDatabase', () => {
  test('creates a private WAL database with the whole schema', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'data')
    const path = join(dir, 'xopcbot.db')
    const db = openDatabase(path)
    expect((db.query('PRAGMA journal_mode').get() as any).journal_mode).toBe('wal')
    expect((db.query('PRAGMA foreign_keys').get() as any).foreign_keys).toBe(1)
    expect((db.query('PRAGMA busy_timeout').get() as any).timeout).toBe(5000)
    expect((db.query('PRAGMA user_version').get() as any).user_version).toBe(migrations.length)
    new StateStore(db).set('k', 'v')
    expect(mode(dir)).toBe(0o700)
    expect(mode(path)).toBe(0o600)
    expect(mode(`${path}-wal`)).toBe(0o600)
    db.close()
  })

  test('reopening keeps data and does not run migrations again', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db')
    const first = openDatabase(path)
    const state = new StateStore(first)
    state.set('telegram:offset', '41')
    state.set('telegram:offset', '42')
    first.close()
    const second = openDatabase(path)
    expect(new StateStore(second).get('telegram:offset')).toBe('42')
    expect(new StateStore(second).get('missing')).toBeNull()
    second.close()
  })

  test('a database from a newer version is refused, not touched', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db')
    const raw = new Database(path)
    raw.run(`PRAGMA user_version = ${migrations.length + 5}`)
    raw.close()
    expect(() => openDatabase(path)).toThrow(/newer xopcbot/)
    const check = new Database(path)
    expect((check.query('PRAGMA user_version').get() as any).user_version).toBe(migrations.length + 5)
    check.close()
  })
})
