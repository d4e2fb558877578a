import type { Database } from 'bun:sqlite'

interface Pending {
  write: () => unknown
  afterCommit: ((value: any) => void) | undefined
  resolve: (value: any) => void
  reject: (error: unknown) => void
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown }

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
 * others go on. When the transaction itself cannot begin or commit (a full disk, a lock held elsewhere), or
 * SQLite rolls it back by itself, nothing of the group is stored and every caller gets that error. Every
 * promise settles, whatever happens.
 */
export class GroupCommit {
  private pending: Pending[] = []

  constructor(private readonly db: Database) {}

  /**
   * Runs `write` (synchronous: it must not await) in the next group transaction; resolves with its result once
   * that has committed. `afterCommit` runs right after the COMMIT, before any other code: for in-memory state
   * that must change together with the database (nothing can read in between).
   */
  run<T>(write: () => T extends PromiseLike<unknown> ? never : T, afterCommit?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.push({ write, afterCommit, resolve, reject }) === 1) setImmediate(this.commit)
    })
  }

  private readonly commit = () => {
    const group = this.pending
    this.pending = []
    let outcomes: Outcome[]
    try {
      outcomes = this.runGroup(group)
    } catch (error) {
      rollBack(this.db)
      for (const { reject } of group) reject(error)
      return
    }
    group.forEach(({ afterCommit, resolve, reject }, index) => {
      const outcome = outcomes[index]!
      if (!outcome.ok) return reject(outcome.error)
      try {
        afterCommit?.(outcome.value)
      } catch {}
      resolve(outcome.value)
    })
  }

  /** The group's transaction; throws (nothing of the group stored) when the group as a whole fails. */
  private runGroup(group: Pending[]): Outcome[] {
    const db = this.db
    db.run('BEGIN IMMEDIATE')
    const outcomes: Outcome[] = []
    for (const { write } of group) {
      db.run('SAVEPOINT group_write')
      let outcome: Outcome
      try {
        const value = write()
        if (value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function') {
          throw new TypeError('a group-commit write must be synchronous')
        }
        outcome = { ok: true, value }
      } catch (error) {
        outcome = { ok: false, error }
      }
      // A full disk, an I/O error or a lost lock makes SQLite roll the whole transaction back by itself: then
      // nothing of the group is stored, and no later write may run outside a transaction.
      if (!db.inTransaction) throw outcome.ok ? new Error('the transaction ended during a write') : outcome.error
      if (outcome.ok) db.run('RELEASE group_write')
      else {
        db.run('ROLLBACK TO group_write')
        db.run('RELEASE group_write')
      }
      outcomes.push(outcome)
    }
    db.run('COMMIT')
    return outcomes
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
