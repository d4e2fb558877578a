import type { LogEntry } from './reader'

type Listener = (entry: LogEntry) => void

/**
 * The log file's lines as they are written, for live readers (GET /api/logs/stream). Costs nothing while no one
 * listens; a listener that throws is dropped rather than break logging.
 */
export class LogTap {
  private readonly listeners = new Set<Listener>()
  private readonly closers = new Set<() => void>()

  get listening(): boolean {
    return this.listeners.size > 0
  }

  /** `onClose` runs when the gateway stops; the returned function unsubscribes. */
  subscribe(listener: Listener, onClose: () => void): () => void {
    this.listeners.add(listener)
    this.closers.add(onClose)
    return () => {
      this.listeners.delete(listener)
      this.closers.delete(onClose)
    }
  }

  emit(entry: LogEntry) {
    for (const listener of this.listeners) {
      try {
        listener(entry)
      } catch {
        this.listeners.delete(listener)
      }
    }
  }

  /** Ends every live reader (the gateway is stopping: open streams must not hold the server's close). */
  close() {
    const closers = [...this.closers]
    this.listeners.clear()
    this.closers.clear()
    for (const close of closers) close()
  }
}
