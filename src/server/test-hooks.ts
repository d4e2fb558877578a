import { Elysia } from 'elysia'

/**
 * Routes for the end-to-end tests of the lifecycle, mounted only when the gateway's environment has
 * XOPCBOT_TEST_HOOKS=1: `GET /_test/slow?ms=N` answers after N ms, and `GET /_test/in-flight` says how
 * many of those are running — which makes "a request in flight" and "a drain that does not finish" real
 * without touching the code paths under test.
 */
export function testHookRoutes() {
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
