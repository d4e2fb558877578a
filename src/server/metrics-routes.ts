import { Elysia } from 'elysia'
import { createExposition, type Exposition } from '../metrics/exposition'
import type { Metrics } from '../metrics/recorder'
import type { AppDeps } from './deps'

/**
 * GET /metrics: the Prometheus text exposition format. Its auth is the front door's, as for /api/* (closed by
 * default). The registry, and prom-client with it, is built on the first scrape.
 */
export function metricsRoutes(metrics: Metrics, deps: Pick<AppDeps, 'version' | 'queue' | 'channels' | 'now'>) {
  let exposition: Promise<Exposition> | null = null
  const build = () =>
    createExposition({
      metrics,
      version: deps.version,
      ...(deps.queue ? { queueDepth: () => deps.queue!.depth() } : {}),
      ...(deps.channels ? { channels: () => deps.channels!.report(deps.now()) } : {}),
    })
  return new Elysia({ name: 'metrics' }).get('/metrics', async function scrape() {
    exposition ??= build().catch((error) => {
      exposition = null
      throw error
    })
    const { contentType, metrics: text } = await exposition
    return new Response(await text(), { headers: { 'content-type': contentType } })
  })
}
