import { waitUntil } from './timeout'

const ignore = () => {}

/**
 * A queue per key: tasks of one key run one at a time, in the order they were given; tasks of different keys
 * run in parallel. A task that fails does not hold up the ones given after it.
 */
export function serialByKey() {
  /** per key, the last task given (settled either way); a key is dropped once its last task settled */
  const tails = new Map<string, Promise<void>>()
  let pending = 0

  return {
    /** Runs `task` once every task given earlier for `key` has settled; resolves or rejects as `task` does. */
    run<T>(key: string, task: () => T | Promise<T>): Promise<T> {
      const result = (tails.get(key) ?? Promise.resolve()).then(task)
      const tail = result.then(ignore, ignore)
      tails.set(key, tail)
      pending++
      tail.then(() => {
        pending--
        if (tails.get(key) === tail) tails.delete(key)
      })
      return result
    },

    /** Whether a task of `key` runs or waits. */
    has(key: string): boolean {
      return tails.has(key)
    },

    /** How many tasks run or wait, all keys together. */
    get pending(): number {
      return pending
    },

    /** Resolves true once no task runs or waits, or false when `timeoutMs` ran out first. */
    idle(timeoutMs: number): Promise<boolean> {
      return waitUntil(() => pending === 0, timeoutMs)
    },
  }
}

export type SerialByKey = ReturnType<typeof serialByKey>
