import { describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GroupCommit } from '../src/storage/group-commit'
import { openDatabase } from '../src/storage/db'

function setup() {
  const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-group-')), 'xopcbot.db')
  const db = openDatabase(path)
  db.run('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
  // Another connection, as another process would have: it sees only what is committed.
  const other = new Database(path)
  const committed = () => (other.query('SELECT text FROM notes ORDER BY id').all() as { text: string }[]).map((r) => r.text)
  /** PRAGMA data_version of another connection changes once per commit made by this one. */
  const commits = () => (other.query('PRAGMA data_version').get() as { data_version: number }).data_version
  const insert = (text: string) => () => db.query('INSERT INTO notes (text) VALUES ($text) RETURNING id').get({ text }) as { id: number }
  return { db, other, committed, commits, insert, group: new GroupCommit(db) }
}

describe('group commit', () => {
  test('writes asked for in one turn of the event loop commit together; each promise settles after the commit', async () => {
    const { group, committed, commits, insert } = setup()
    const before = commits()
    const writes = ['a', 'b', 'c', 'd'].map((text) => group.run(insert(text)))
    expect(committed()).toEqual([])
    const results = await Promise.all(writes)
    expect(results.map((r) => r.id)).toEqual([1, 2, 3, 4])
    expect(committed()).toEqual(['a', 'b', 'c', 'd'])
    expect(commits() - before).toBe(1)
    // The next turn's writes are the next group.
    await group.run(insert('e'))
    expect(commits() - before).toBe(2)
  })

  test('a write that throws is rolled back alone and rejects its caller; the others are stored', async () => {
    const { group, committed, insert, db } = setup()
    const failing = () => {
      db.run("INSERT INTO notes (text) VALUES ('half-done')")
      throw new Error('refused by the caller')
    }
    const [a, bad, c] = await Promise.allSettled([group.run(insert('a')), group.run(failing), group.run(insert('c'))])
    expect(a.status).toBe('fulfilled')
    expect(bad).toMatchObject({ status: 'rejected', reason: { message: 'refused by the caller' } })
    expect(c.status).toBe('fulfilled')
    expect(committed()).toEqual(['a', 'c'])
  })

  test('a full disk: the write that needs space is refused; what resolved is stored, what was refused is not', async () => {
    const { group, committed, insert, db } = setup()
    await group.run(insert('before'))
    const { page_count } = db.query('PRAGMA page_count').get() as { page_count: number }
    db.run(`PRAGMA max_page_count = ${page_count}`)
    const texts = ['small', 'x'.repeat(100_000), 'after']
    const outcomes = await Promise.allSettled(texts.map((text) => group.run(insert(text))))
    expect((outcomes[1] as PromiseRejectedResult).reason.code).toBe('SQLITE_FULL')
    // SQLite may roll the whole transaction back on SQLITE_FULL, or only the statement: either way what a
    // caller was told is what is stored, and no write ran outside the group's transaction.
    expect(committed()).toEqual(['before', ...texts.filter((_, i) => outcomes[i]!.status === 'fulfilled')])
    expect(db.inTransaction).toBe(false)
    db.run('PRAGMA max_page_count = 1073741823')
    await group.run(insert('later'))
    expect(committed().at(-1)).toBe('later')
  })

  test('when SQLite rolls the whole transaction back, every caller of the group is refused and nothing of it is stored', async () => {
    const { group, committed, db } = setup()
    db.run("INSERT INTO notes (text) VALUES ('before')")
    const { page_count } = db.query('PRAGMA page_count').get() as { page_count: number }
    db.run(`PRAGMA max_page_count = ${page_count}`)
    const write = (text: string) => () => void db.run('INSERT INTO notes (text) VALUES (?)', [text])
    const outcomes = await Promise.allSettled([group.run(write('small')), group.run(write('x'.repeat(100_000))), group.run(write('after'))])
    expect(db.inTransaction).toBe(false)
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const outcome of outcomes) expect((outcome as PromiseRejectedResult).reason.code).toBe('SQLITE_FULL')
    expect(committed()).toEqual(['before'])
  })

  test('afterCommit runs right after the commit, before any caller continues; an asynchronous write is refused', async () => {
    const { group, committed, insert, db } = setup()
    const seen: string[] = []
    const first = group.run(insert('a'), () => seen.push(`after a: ${committed().join(',')}`)).then(() => seen.push('caller a'))
    const second = group.run(insert('b'), () => seen.push(`after b: ${committed().join(',')}`)).then(() => seen.push('caller b'))
    await Promise.all([first, second])
    expect(seen).toEqual(['after a: a,b', 'after b: a,b', 'caller a', 'caller b'])
    const asynchronous = (async () => db.run("INSERT INTO notes (text) VALUES ('late')")) as () => never
    await expect(group.run(asynchronous)).rejects.toThrow('a group-commit write must be synchronous')
    await group.run(insert('c'))
    expect(committed()).toEqual(['a', 'b', 'c'])
  })

  test('a write lock held elsewhere: every caller gets SQLITE_BUSY, and the next group works once it is released', async () => {
    const { group, committed, insert, db, other } = setup()
    db.run('PRAGMA busy_timeout = 0')
    other.run('BEGIN IMMEDIATE')
    const outcomes = await Promise.allSettled([group.run(insert('a')), group.run(insert('b'))])
    expect(outcomes.map((o) => (o as PromiseRejectedResult).reason?.code)).toEqual(['SQLITE_BUSY', 'SQLITE_BUSY'])
    other.run('ROLLBACK')
    await group.run(insert('c'))
    expect(committed()).toEqual(['c'])
  })
})
