/**
 * Transient storage faults: the database cannot be written or read right now (full or read-only disk, an
 * I/O error, another writer holding the lock), but may work again later. What is refused because of one is a
 * 503 worth retrying (server/errors.ts); work already accepted is retried with backoff (the inbound queue,
 * cron), never lost and never left half done.
 */

const TRANSIENT = /^SQLITE_(READONLY|FULL|IOERR|CANTOPEN|BUSY|LOCKED)/

/** The SQLite code (e.g. `SQLITE_FULL`) of a transient storage fault, on the error or its causes; else null. */
export function storageFaultOf(error: unknown): string | null {
  let current = error
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && TRANSIENT.test(code)) return code
    current = (current as { cause?: unknown }).cause
  }
  return null
}

/**
 * How work that hit a transient fault is retried: `attempts` tries in all, waiting 1 s, 2 s, 4 s, 8 s between
 * them (doubling, at most `maxDelayMs`) — about 15 s, long enough for a lock to be released or some disk space
 * to be freed by log rotation, short enough that a chat is not held up for minutes before it hears "failed".
 */
export const RETRY_POLICY = { attempts: 5, firstDelayMs: 1000, maxDelayMs: 30_000 } as const
export type RetryPolicy = { attempts: number; firstDelayMs: number; maxDelayMs: number }

/** The wait after failed attempt number `attempt` (1-based). */
export function retryDelay(attempt: number, policy: RetryPolicy = RETRY_POLICY): number {
  return Math.min(policy.firstDelayMs * 2 ** Math.max(0, attempt - 1), policy.maxDelayMs)
}

/** Time as the retry timer sees it; tests pass a fake one. */
export interface Clock {
  now(): number
  setTimeout(run: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const timer = setTimeout(run, ms)
    // A pending retry never keeps a process alive on its own.
    ;(timer as { unref?: () => void }).unref?.()
    return timer
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/**
 * Keys due again at some time, with one timer for the earliest — armed only while something waits, so an
 * idle gateway pays nothing. `onDue` runs for each key whose time has come (it should not throw: it is
 * called from a timer). After `stop` nothing fires.
 */
export class RetryTimer<K> {
  private readonly due = new Map<K, number>()
  private timer: unknown = null
  private stopped = false

  constructor(
    private readonly onDue: (key: K) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /** `key` is due in `delayMs` (replacing an earlier time for it). */
  after(key: K, delayMs: number) {
    if (this.stopped) return
    this.due.set(key, this.clock.now() + delayMs)
    this.arm()
  }

  has(key: K): boolean {
    return this.due.has(key)
  }

  get size(): number {
    return this.due.size
  }

  /** True while a timer is set (for tests: nothing is armed when nothing waits). */
  get armed(): boolean {
    return this.timer !== null
  }

  stop() {
    this.stopped = true
    this.due.clear()
    this.arm()
  }

  private arm() {
    if (this.timer !== null) this.clock.clearTimeout(this.timer)
    this.timer = null
    if (this.stopped || this.due.size === 0) return
    let earliest = Infinity
    for (const at of this.due.values()) if (at < earliest) earliest = at
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, earliest - this.clock.now()))
  }

  private fire() {
    this.timer = null
    const now = this.clock.now()
    try {
      for (const [key, at] of [...this.due]) {
        if (at > now || this.stopped) continue
        this.due.delete(key)
        this.onDue(key)
      }
    } finally {
      this.arm()
    }
  }
}
