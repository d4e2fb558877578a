import { waitUntil } from '../util/timeout'
/**
 * Requests the gateway has accepted and not yet answered. The graceful stop waits for this to reach zero;
 * requests refused while draining (503) are never counted, so a steady stream of new requests cannot hold
 * the drain open.
 */
export class InFlight {
  count = 0

  admit() {
    this.count++
  }

  finish() {
    this.count--
  }

  /** Resolves true once nothing is in flight, or false when `timeoutMs` ran out first. */
  drained(timeoutMs: number): Promise<boolean> {
    return waitUntil(() => this.count === 0, timeoutMs)
  }
}
