import { describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliError, DataError, ExitCode } from '../src/errors'
import type { ModelMessage } from 'ai'
import { SessionStore } from '../src/agent/sessions'
import { moveAsideCommand, openDatabase, StateStore } from '../src/storage/db'
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

describe('a damaged database is a DataError (exit 65) with the path and what to do', () => {
  const PAGE = 4096
  const dataError = (path: string): DataError => {
    try {
      openDatabase(path).close()
    } catch (error) {
      expect(error).toBeInstanceOf(DataError)
      return error as DataError
    }
    throw new Error('expected a DataError')
  }

  test('a file that is not a database', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db')
    writeFileSync(path, 'not a database\n'.repeat(500))
    const error = dataError(path)
    expect(error.exitCode).toBe(ExitCode.DATA)
    expect(error.message).toBe(
      `The database ${path} is not an SQLite database, so the gateway cannot use it: restore it from a backup, or move it aside to start with an empty one (mv ${path} ${path}.damaged).`,
    )
  })

  test('pages damaged in the middle fail the integrity check, even where the schema is intact', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db')
    const db = openDatabase(path)
    const state = new StateStore(db)
    db.transaction(() => {
      for (let n = 0; n < 2000; n++) state.set(`k${n}`, 'v'.repeat(200))
    })()
    db.close()
    const pages = statSync(path).size / PAGE
    const fd = openSync(path, 'r+')
    writeSync(fd, Buffer.alloc(PAGE * 2, 0xa5), 0, PAGE * 2, Math.floor(pages / 2) * PAGE)
    closeSync(fd)
    expect(dataError(path).message).toContain(`The database ${path} is damaged`)
  })

  test('the move-aside command takes the -wal and -shm files along, and quotes what needs quoting', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), "it's here")
    mkdirSync(dir)
    const path = join(dir, 'xopcbot.db')
    writeFileSync(path, '')
    writeFileSync(`${path}-wal`, '')
    expect(moveAsideCommand(path, 'linux')).toBe(`mv '${dir.replace("'", "'\\''")}/xopcbot.db' '${dir.replace("'", "'\\''")}/xopcbot.db.damaged' && mv '${dir.replace("'", "'\\''")}/xopcbot.db-wal' '${dir.replace("'", "'\\''")}/xopcbot.db.damaged-wal'`)
    expect(moveAsideCommand('C:\\Users\\me\\.xopcbot\\xopcbot.db', 'win32')).toBe('move C:\\Users\\me\\.xopcbot\\xopcbot.db C:\\Users\\me\\.xopcbot\\xopcbot.db.damaged')
  })

  test('a newer schema is a DataError that says to upgrade, not to move the file', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db')
    const raw = new Database(path)
    raw.run(`PRAGMA user_version = ${migrations.length + 1}`)
    raw.close()
    const error = dataError(path)
    expect(error.message).toContain('upgrade xopcbot')
    expect(error.message).not.toContain('mv ')
  })

  /** Opening `path` fails with a fault that may pass: a CliError with exit 1, not a DataError (65). */
  const transientOpenFailure = (path: string): CliError => {
    let failure: unknown = null
    try {
      openDatabase(path).close()
    } catch (error) {
      failure = error
    }
    expect(failure).toBeInstanceOf(CliError)
    expect(failure).not.toBeInstanceOf(DataError)
    expect((failure as CliError).exitCode).toBe(ExitCode.FAILURE)
    return failure as CliError
  }

  test('a database another process holds locked is exit 1 (that passes), with the path and what to do', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db')
    const holder = new Database(path)
    holder.run('CREATE TABLE t (x)')
    holder.run('BEGIN EXCLUSIVE')
    try {
      expect(transientOpenFailure(path).message).toBe(`Cannot open the database ${path} (database is locked); another process holds a lock on it; stop that process and start again.`)
    } finally {
      holder.run('ROLLBACK')
      holder.close()
    }
  })

  // root may open any file, so the permission check cannot fail for it.
  if (process.getuid?.() === 0) console.log('skipped: "a database this user cannot open" (running as root, file permissions are not enforced)')
  test.skipIf(process.platform === 'win32' || process.getuid?.() === 0)('a database this user cannot open is exit 1 (that may pass), with the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xopcbot-db-'))
    const path = join(dir, 'xopcbot.db')
    openDatabase(path).close()
    chmodSync(path, 0o000)
    try {
      expect(transientOpenFailure(path).message).toContain(`Cannot open the database ${path}`)
    } finally {
      chmodSync(path, 0o600)
    }
  })
})

describe('session history kept in memory', () => {
  const turn = (i: number, withTool = false): ModelMessage[] => [
    { role: 'user', content: `question ${i}` },
    ...(withTool
      ? ([
          { role: 'assistant', content: [{ type: 'tool-call', toolCallId: `c${i}`, toolName: 'time', input: {} }] },
          { role: 'tool', content: [{ type: 'tool-result', toolCallId: `c${i}`, toolName: 'time', output: { type: 'json', value: { iso: 'x' } } }] },
        ] as ModelMessage[])
      : []),
    { role: 'assistant', content: `answer ${i}` },
  ]

  test('reads as SQLite does, for every window, after every turn; a deleted or failed turn leaves no trace', async () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-db-')), 'xopcbot.db'))
    const warm = new SessionStore(db)
    for (let i = 0; i < 12; i++) {
      await warm.appendTurn('s', { messages: turn(i, i % 3 === 0), at: new Date(i * 1000).toISOString() })
      for (const limit of [1, 2, 3, 5, 8, 50]) {
        // A store that has never read this session reads SQLite; the warm one answers from memory.
        expect(warm.history('s', limit)).toEqual(new SessionStore(db).history('s', limit))
      }
    }
    expect(warm.history('s', 4).map((m) => m.content)).toEqual(['question 10', 'answer 10', 'question 11', 'answer 11'])
    // The window never starts inside a turn: the last three rows of a tool turn start with its tool call.
    await warm.appendTurn('s', { messages: turn(12, true), at: 'now' })
    expect(warm.history('s', 3)).toEqual([])
    expect(warm.history('s', 4).map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant'])

    // A turn whose transaction fails is neither stored nor remembered.
    await expect(warm.appendTurn('s', { messages: turn(99), at: 'now' }, () => { throw new Error('storage refused') })).rejects.toThrow('storage refused')
    expect(warm.history('s', 50)).toEqual(new SessionStore(db).history('s', 50))
    expect(JSON.stringify(warm.history('s', 50))).not.toContain('question 99')

    // Messages given to the model code are shared between turns: they cannot be changed.
    const [first] = warm.history('s', 2)
    expect(() => ((first as { content: string }).content = 'changed')).toThrow()

    expect(warm.delete('s')).toBe(true)
    expect(warm.history('s', 50)).toEqual([])
    db.close()
  })
})
