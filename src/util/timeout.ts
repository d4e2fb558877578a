import { pollUntil } from './poll'

/**
 * Resolves with the promise's value, or with `fallback` after `ms`. Every await on the shutdown path goes
 * through this: Bun's `server.stop(true)` never resolves while a handler is pending (oven-sh/bun#40043).
 */
export async function withTimeout<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `done` every 10 ms; resolves true once it holds, or false when `timeoutMs` ran out first. */
export async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  return (await pollUntil(() => done(), { timeoutMs, intervalMs: 10 })) !== null
}
