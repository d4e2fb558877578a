/** What a poll's check returns while its condition does not hold yet. */
type NotYet = false | null | undefined

/**
 * Calls `check` until it returns something other than false/null/undefined, and resolves with that; resolves
 * null when `timeoutMs` ran out first. `check` runs at once and again after each `intervalMs` pause — also once
 * after the pause that crossed the deadline, so a condition met during the last pause is seen.
 */
export async function pollUntil<T>(check: () => T | NotYet | Promise<T | NotYet>, { timeoutMs, intervalMs }: { timeoutMs: number; intervalMs: number }): Promise<T | null> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await check()
    if (result !== false && result !== null && result !== undefined) return result
    if (Date.now() >= deadline) return null
    await Bun.sleep(intervalMs)
  }
}
