import type { Clock } from '../../src/storage/faults'

/**
 * A Clock (src/storage/faults.ts: `now`, `setTimeout`, `clearTimeout`) that moves only when the test says so.
 * `advance` runs the timers that come due on the way, in time order — also those they set themselves.
 */
export class ManualClock implements Clock {
  private nextId = 1
  private readonly timers = new Map<number, { at: number; run: () => void }>()

  constructor(public time = 0) {}

  now = () => this.time
  setTimeout = (run: () => void, ms: number) => {
    const id = this.nextId++
    this.timers.set(id, { at: this.time + Math.max(0, ms), run })
    return id
  }
  clearTimeout = (handle: unknown) => void this.timers.delete(handle as number)

  /** armed timers, as ms from now, soonest first */
  get pending(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.time).sort((a, b) => a - b)
  }

  /** Moves time on by `ms`, running each timer at its time. */
  advance(ms: number) {
    const target = this.time + ms
    for (;;) {
      let next: [number, { at: number; run: () => void }] | undefined
      for (const entry of this.timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry
      if (!next) break
      this.timers.delete(next[0])
      this.time = Math.max(this.time, next[1].at)
      next[1].run()
    }
    this.time = target
  }
}
