import { otherProgramMessage, type LockInfo } from '../../lifecycle/lock'
import { runningGateway, type Target } from '../../lifecycle/control'

/**
 * The running gateway's lock, or null after saying that none runs (with `line`). A stale lock removed on the
 * way is reported first (see runningGateway).
 */
export function runningOrReport(target: Target, line: string): LockInfo | null {
  const found = runningGateway(target)
  if (found.info) return found.info
  const stale = found.removedStale
  if (stale) {
    const pid = stale.info?.pid
    if (stale.info && stale.other) console.log(`⚠️ ${otherProgramMessage(stale.info, stale.other)} Removed the stale lock.`)
    else console.log(`⚠️ Removed a stale lock${pid ? ` of pid ${pid}` : ''}: that process is gone.`)
  }
  console.log(line)
  return null
}
