import type { Metric } from 'prom-client'
import type { HistogramSource, Metrics } from './recorder'

/** Channel states, each a series of `xopcbot_channel_state` (1 for the state a channel is in, 0 for the others). */
const CHANNEL_STATES = ['starting', 'running', 'retrying', 'failed', 'stopped', 'disabled'] as const
const QUEUE_STATES = ['queued', 'processing', 'delivered', 'failed'] as const

/**
 * Default process metrics that say nothing under Bun, removed from the registry:
 * - process_heap_bytes: VmData, which under JavaScriptCore includes gigabytes of reserved address space;
 * - nodejs_active_{handles,requests,resources}(_total): Bun's process._getActive* lists are always empty;
 * - nodejs_heap_space_size_*: Bun's v8.getHeapSpaceStatistics() is a stub (one space, the rest zeros);
 * - nodejs_gc_duration_seconds: Bun emits no "gc" performance entries, so it stays empty;
 * - nodejs_version_info: the Node version Bun emulates (xopcbot_build_info has Bun's own).
 */
export const DROPPED_DEFAULT_METRICS = [
  'process_heap_bytes',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_requests',
  'nodejs_active_requests_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
  'nodejs_heap_space_size_total_bytes',
  'nodejs_heap_space_size_used_bytes',
  'nodejs_heap_space_size_available_bytes',
  'nodejs_gc_duration_seconds',
  'nodejs_version_info',
]

export const PREFIX = 'xopcbot_'

export interface ExpositionSources {
  metrics: Metrics
  version: string
  /** inbound messages by state, read at scrape time */
  queueDepth?: () => Record<string, number>
  /** each channel's type and state, read at scrape time */
  channels?: () => Record<string, { type: string; state: string }>
}

export interface Exposition {
  contentType: string
  metrics(): Promise<string>
}

/**
 * The Prometheus registry of one gateway (its own, not prom-client's global one), built on the first scrape:
 * prom-client is loaded only then. Counters and histograms are read from the plain numbers of `Metrics`;
 * queue depth and channel states are read from their owners at scrape time.
 */
export async function createExposition(sources: ExpositionSources): Promise<Exposition> {
  const { Registry, Counter, Gauge, collectDefaultMetrics } = await import('prom-client')
  const registry = new Registry()
  const { metrics } = sources

  for (const source of metrics.counters()) {
    new Counter({
      name: source.name,
      help: source.help,
      labelNames: [...source.labelNames],
      registers: [registry],
      collect() {
        this.reset()
        for (const [labels, value] of source.samples()) this.inc(labels, value)
      },
    })
  }
  for (const source of metrics.histograms()) registry.registerMetric(histogramOf(source))

  new Gauge({
    name: `${PREFIX}build_info`,
    help: 'The gateway\'s version and the Bun version it runs on; always 1.',
    labelNames: ['version', 'bun'],
    registers: [registry],
  }).set({ version: sources.version, bun: typeof Bun === 'undefined' ? 'none' : Bun.version }, 1)

  if (sources.queueDepth) {
    const depth = sources.queueDepth
    new Gauge({
      name: `${PREFIX}inbound_messages`,
      help: 'Inbound messages by state (queued, processing, delivered, failed), read at scrape time.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.reset()
        // The database may be unusable right now: the scrape still answers, without these series.
        let counts: Record<string, number>
        try {
          counts = depth()
        } catch {
          return
        }
        for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0)
      },
    })
  }

  if (sources.channels) {
    const report = sources.channels
    new Gauge({
      name: `${PREFIX}channel_state`,
      help: 'Each configured channel\'s state: 1 for the state it is in, 0 for the others.',
      labelNames: ['channel', 'type', 'state'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [channel, { type, state: current }] of Object.entries(report())) {
          for (const state of CHANNEL_STATES) this.set({ channel, type, state }, state === current ? 1 : 0)
        }
      },
    })
  }

  collectDefaultMetrics({ register: registry, prefix: PREFIX })
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(PREFIX + name)

  return { contentType: registry.contentType, metrics: () => registry.metrics() }
}

/**
 * A histogram whose buckets are counted elsewhere (HistogramSeries): prom-client's Histogram can only be fed
 * one observation at a time, so this answers the registry's `get()` with the buckets as they are.
 */
function histogramOf(source: HistogramSource): Metric {
  const { name, help, bounds } = source
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = []
      for (const [labels, series] of source.samples()) {
        let cumulative = 0
        for (let i = 0; i < bounds.length; i++) {
          cumulative += series.counts[i]!
          values.push({ labels: { ...labels, le: bounds[i]! }, value: cumulative, metricName: `${name}_bucket` })
        }
        values.push({ labels: { ...labels, le: '+Inf' }, value: series.count, metricName: `${name}_bucket` })
        values.push({ labels, value: series.sum, metricName: `${name}_sum` })
        values.push({ labels, value: series.count, metricName: `${name}_count` })
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values }
    },
    reset() {},
  }
  return metric as unknown as Metric
}
