import type { Database } from 'bun:sqlite'

interface Pending {
  write: () => unknown
  resolve: (value: any) => void
  reject: (error: unknown) => void
}

/**
 * Group commit: the writes that callers ask for while the event loop turns are run together in one
 * transaction at the end of the turn, and each caller's promise settles once that transaction has
 * committed — so what a caller acknowledges after `await` is stored, as with a transaction of its own.
 *
 * A commit costs far more than the rows it writes (the hot pages — an index's last page, the sequence
 * table — go to the WAL once per commit, then to the database at the next checkpoint): the worker, the
 * agent and the accepts of a busy gateway write a few rows each, many times a second, and share one.
 *
 * Each write runs in a savepoint of its own: one that throws is rolled back alone and rejects its caller; the
 * others go on. When the transaction itself cannot begin or commit (a full disk, a lock held elsewhere),
 * nothing of the group is stored and every caller gets that error.
 */
export class GroupCommit {
  private pending: Pending[] = []

  constructor(private readonly db: Database) {}

  /** Runs `write` in the next group transaction; resolves with its result once that has committed. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.push({ write, resolve, reject }) === 1) setImmediate(this.commit)
    })
  }

  private readonly commit = () => {
    const group = this.pending
    this.pending = []
    const db = this.db
    const failAll = (error: unknown) => {
      for (const { reject } of group) reject(error)
    }
    try {
      db.run('BEGIN IMMEDIATE')
    } catch (error) {
      return failAll(error)
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = []
    for (const { write } of group) {
      db.run('SAVEPOINT group_write')
      try {
        outcomes.push({ ok: true, value: write() })
        db.run('RELEASE group_write')
      } catch (error) {
        // A full disk, an I/O error or a lost lock makes SQLite roll the whole transaction back by itself:
        // then nothing of the group is stored, and no later write may run outside a transaction.
        if (!db.inTransaction) return failAll(error)
        try {
          db.run('ROLLBACK TO group_write')
          db.run('RELEASE group_write')
        } catch (rollbackError) {
          rollBack(db)
          return failAll(rollbackError)
        }
        outcomes.push({ ok: false, error })
      }
    }
    try {
      db.run('COMMIT')
    } catch (error) {
      rollBack(db)
      return failAll(error)
    }
    group.forEach(({ resolve, reject }, index) => {
      const outcome = outcomes[index]!
      if (outcome.ok) resolve(outcome.value)
      else reject(outcome.error)
    })
  }
}

function rollBack(db: Database) {
  if (!db.inTransaction) return
  try {
    db.run('ROLLBACK')
  } catch {}
}

const groups = new WeakMap<Database, GroupCommit>()

/** The one group commit of a database handle (every store that writes through it shares it). */
export function groupCommitOf(db: Database): GroupCommit {
  let group = groups.get(db)
  if (!group) groups.set(db, (group = new GroupCommit(db)))
  return group
}
