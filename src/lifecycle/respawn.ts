import { pollUntil } from '../util/poll'
import { localUrl } from '../net/url'
import { spawnDetached, type StartPlan } from './control'
import { readLock, type LockInfo } from './lock'
import { terminate } from './ports'
import { identify } from './process'
import { readFirstError } from './restart-report'

// A restart of an unsupervised gateway hands over to a new process: the old one stops serving and releases the
// lock, starts its successor in the background and waits for it to take over (see run.ts).

type ChildState = { pid?: number | undefined; exitCode: number | null; signalCode: NodeJS.Signals | null }
const exited = (child: ChildState) => child.exitCode !== null || child.signalCode !== null

const SUCCESSOR_TIMEOUT_MS = 20_000

/** Why a respawned successor did not take over: its own first error when it exited, else the timeout. */
function successorFailure(lockPath: string, child: ChildState, timeoutMs: number): string {
  if (!exited(child)) return `The new process (pid ${child.pid}) did not become healthy within ${timeoutMs / 1000} s.`
  const how = child.exitCode !== null ? `exited with code ${child.exitCode}` : `was killed by ${child.signalCode}`
  return readFirstError(lockPath) ?? `The new process (pid ${child.pid}) ${how} at start without printing an error.`
}

/** Waits until a successor process owns the lock and answers /health; null if it does not within `timeoutMs`. */
async function waitForSuccessor(lockPath: string, oldPid: number, child: ChildState, timeoutMs: number): Promise<LockInfo | null> {
  const found = await pollUntil(
    async () => {
      if (exited(child)) return { info: null }
      const info = readLock(lockPath)
      if (!info || info.pid === oldPid || identify(info).kind !== 'gateway') return null
      // The gateway's own answer, not just any 200: another program may hold the port the successor wanted.
      const healthy = await fetch(`${localUrl(info)}/health`, { signal: AbortSignal.timeout(1000) })
        .then(async (r) => r.ok && ((await r.json()) as { status?: unknown }).status === 'healthy')
        .catch(() => false)
      return healthy ? { info } : null
    },
    { timeoutMs, intervalMs: 50 },
  )
  return found?.info ?? null
}

/**
 * Starts the successor of this process (`plan`) in the background and waits for it to own the lock and be
 * healthy. When it does not, what is left of it is killed and the failure is returned as one sentence.
 */
export async function handOver(plan: StartPlan, lockPath: string): Promise<{ successor: LockInfo } | { failure: string; pid: number | undefined }> {
  const child = spawnDetached(plan, lockPath)
  const successor = await waitForSuccessor(lockPath, process.pid, child, SUCCESSOR_TIMEOUT_MS)
  if (successor) return { successor }
  const failure = successorFailure(lockPath, child, SUCCESSOR_TIMEOUT_MS)
  if (child.pid && !exited(child)) await terminate(child.pid, null)
  return { failure, pid: child.pid }
}
