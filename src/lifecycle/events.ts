export type Event = { kind: 'stop'; reason: string } | { kind: 'restart'; reason: string }

/** A queue of lifecycle events fed by signals and the control routes; the run loop takes them one by one. */
export class LifecycleEvents {
  private queue: Event[] = []
  private waiting: ((event: Event) => void) | null = null

  push(event: Event) {
    if (this.waiting) {
      const resolve = this.waiting
      this.waiting = null
      resolve(event)
    } else this.queue.push(event)
  }

  next(): Promise<Event> {
    const event = this.queue.shift()
    return event ? Promise.resolve(event) : new Promise((resolve) => (this.waiting = resolve))
  }
}
