import { Elysia } from 'elysia'
import type { TestPlugin } from '../../src/server/test-plugin'

/**
 * Routes for the end-to-end tests of the lifecycle, added to a gateway started from source with
 * `startGateway({ env: TEST_HOOKS })` (XOPCBOT_TEST_PLUGIN names this file; the gateway imports it at start).
 * `GET /_test/slow?ms=N` answers after N ms, and `GET /_test/in-flight` says how many of those are running —
 * which makes "a request in flight" and "a drain that does not finish" real without touching the code paths
 * under test. They live here, not in src/, so that the product does not ship them.
 */
const testHookRoutes: TestPlugin = () => {
  let inFlight = 0
  return new Elysia({ name: 'test-hooks', prefix: '/_test' })
    .get('/slow', async function slow({ query }) {
      const ms = Math.min(Number(query.ms) || 0, 120_000)
      inFlight++
      try {
        await Bun.sleep(ms)
      } finally {
        inFlight--
      }
      return { status: 'ok', slept: ms }
    })
    .get('/in-flight', () => ({ inFlight }))
}
export default testHookRoutes

/** The environment that makes a gateway (from source) mount these routes. */
export const TEST_HOOKS: Record<string, string> = { XOPCBOT_TEST_PLUGIN: import.meta.path }

/** How many `/_test/slow` requests the gateway at `url` is running. */
export async function slowInFlight(url: string): Promise<number> {
  const response = await fetch(`${url}/_test/in-flight`)
  return ((await response.json()) as { inFlight: number }).inFlight
}
