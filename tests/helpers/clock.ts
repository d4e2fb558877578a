import type { Timer } from '../../src/channels/supervisor'

/**
 * A clock that moves only when the test says so: `sleep`s wait until `advance` passes their time (or their
 * signal aborts). `sleeps` records every wait asked for, in order.
 */
export class FakeClock implements Timer {
  time: number
  readonly sleeps: number[] = []
  private timers: { at: number; wake: () => void }[] = []
  private watchers: (() => void)[] = []

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.time = start
  }

  now = () => this.time

  sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      this.sleeps.push(ms)
      for (const watch of this.watchers.splice(0)) watch()
      if (signal.aborted) return resolve()
      const timer = {
        at: this.time + ms,
        wake: () => {
          this.timers = this.timers.filter((t) => t !== timer)
          signal.removeEventListener('abort', timer.wake)
          resolve()
        },
      }
      this.timers.push(timer)
      signal.addEventListener('abort', timer.wake, { once: true })
    })

  /** the waits that have not ended, as ms from now */
  get pending(): number[] {
    return this.timers.map((t) => t.at - this.time)
  }

  /** Resolves once `count` sleeps in all have been asked for (the code under test reached its wait). */
  async sleepsReach(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.sleeps.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for sleep #${count} (${this.sleeps.length} so far: ${this.sleeps.join(', ')})`)
      await new Promise<void>((resolve) => {
        this.watchers.push(resolve)
        // Real I/O (an HTTP call) may come first; look again now and then.
        setTimeout(resolve, 20)
      })
    }
  }

  /** Moves time on by `ms`, ending the waits that are due. */
  advance(ms: number) {
    this.time += ms
    for (const timer of [...this.timers].sort((a, b) => a.at - b.at)) if (timer.at <= this.time) timer.wake()
  }
}
