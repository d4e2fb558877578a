/**
 * What the gateway counts for GET /metrics, in plain numbers. The parts that do the work (the front door, the
 * agent, the senders, the queue, cron) report through the small observer interfaces below; the Prometheus
 * registry (./exposition.ts, prom-client) is built on the first scrape and reads these numbers then. So a
 * request costs a Map lookup and a few additions, and a gateway that is never scraped never loads prom-client.
 */

/** How an agent turn ended on a model. `fallback`: the model failed and the turn went on to the next one. */
export type TurnOutcome = 'ok' | 'error' | 'timeout' | 'cancelled' | 'storage_fault' | 'fallback'

export interface TurnObserver {
  /** A turn ended on `model` (`seconds` since it began); `tokens` of an answered turn, as its usage row has them. */
  turn(model: string, outcome: TurnOutcome, seconds: number, tokens?: { input: number; output: number }): void
}

export interface DeliveryObserver {
  /** A channel's sender was asked to deliver (its own retries included) and succeeded or failed. */
  delivery(channel: string, ok: boolean): void
}

export interface QueueObserver {
  /** `count` inbound messages entered `state` (queued, processing, delivering, delivered, failed). */
  transition(state: string, count?: number): void
}

export interface CronObserver {
  /** A run's outcome was recorded. */
  cronRun(trigger: string, outcome: 'ok' | 'failed'): void
  /** A scheduled run started `seconds` after the time it was due. */
  cronFired(seconds: number): void
}

export type Labels = Record<string, string>

/** A histogram of one label set: counts per bucket (the last one above every bound), sum and count. */
export class HistogramSeries {
  readonly counts: number[]
  sum = 0
  count = 0

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe(value: number) {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

/** A metric's description and its current samples, for the exposition. */
export interface CounterSource {
  name: string
  help: string
  labelNames: readonly string[]
  samples(): Iterable<[Labels, number]>
}

export interface HistogramSource {
  name: string
  help: string
  labelNames: readonly string[]
  bounds: readonly number[]
  samples(): Iterable<[Labels, HistogramSeries]>
}

const labelsOf = (names: readonly string[], values: readonly string[]): Labels => Object.fromEntries(names.map((name, i) => [name, values[i]!]))

/** A counter by label values (few series, off the hot path). */
export class Counts implements CounterSource {
  private readonly series = new Map<string, { values: string[]; value: number }>()

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {}

  add(values: string[], amount = 1) {
    const key = values.join('\u0000')
    const series = this.series.get(key)
    if (series) series.value += amount
    else this.series.set(key, { values, value: amount })
  }

  *samples(): Iterable<[Labels, number]> {
    for (const { values, value } of this.series.values()) yield [labelsOf(this.labelNames, values), value]
  }
}

/** A histogram by label values. */
export class Histograms implements HistogramSource {
  private readonly series = new Map<string, { values: string[]; histogram: HistogramSeries }>()

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], readonly bounds: readonly number[]) {}

  /** The series of these label values (kept by callers that observe often). */
  of(values: string[]): HistogramSeries {
    const key = values.join('\u0000')
    let series = this.series.get(key)
    if (!series) this.series.set(key, (series = { values, histogram: new HistogramSeries(this.bounds) }))
    return series.histogram
  }

  observe(values: string[], value: number) {
    this.of(values).observe(value)
  }

  *samples(): Iterable<[Labels, HistogramSeries]> {
    for (const { values, histogram } of this.series.values()) yield [labelsOf(this.labelNames, values), histogram]
  }
}

/** Seconds: /health answers in well under a millisecond, a streamed agent turn can take minutes. */
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
const TURN_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300]
const DELAY_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]

/** Methods outside this list are counted as OTHER: the method, like the path, is the client's to choose. */
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'OTHER'] as const
const OTHER = METHODS.length - 1
function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0
    case 'POST':
      return 1
    case 'PUT':
      return 2
    case 'PATCH':
      return 3
    case 'DELETE':
      return 4
    case 'HEAD':
      return 5
    case 'OPTIONS':
      return 6
    default:
      return OTHER
  }
}

/** The label of requests whose path matches no route. */
export const UNMATCHED = 'unmatched'

/** One route template's requests (by method and status, key `status * 8 + method`) and latency. */
interface RouteSeries {
  route: string
  requests: Map<number, number>
  latency: HistogramSeries
}

/**
 * Requests by route template, never by raw path: paths are the client's to choose and would make a series
 * each. A path is matched against the templates once and remembered in a bounded memo, so a request costs one
 * Map lookup, one Map update and one bucket scan.
 */
export class HttpMetrics {
  private readonly byRoute = new Map<string, RouteSeries>()
  /** path → its route's series; paths are the client's to choose: bounded, and simply starts over when full */
  private readonly memo = new Map<string, RouteSeries>()
  private matcher: ((path: string) => string) | null = null

  readonly requests: CounterSource = {
    name: 'xopcbot_http_requests_total',
    help: 'HTTP requests answered, by route template, method and status.',
    labelNames: ['route', 'method', 'status'],
    samples: () => this.requestSamples(),
  }

  readonly latency: HistogramSource = {
    name: 'xopcbot_http_request_duration_seconds',
    help: 'Time from a request reaching the gateway to its response (its headers, for a stream), by route template.',
    labelNames: ['route'],
    bounds: HTTP_BUCKETS,
    samples: () => [...this.byRoute.values()].map(({ route, latency }): [Labels, HistogramSeries] => [{ route }, latency]),
  }

  /** The app's route paths (`/api/sessions/:key`), set by the app and read on the first request. */
  private templates: () => Iterable<string> = () => []

  /** Tells which routes there are (createApp does, once its routes are mounted). */
  useRoutes(templates: () => Iterable<string>) {
    this.templates = templates
    this.matcher = null
    this.memo.clear()
  }

  /** Counts one answered request. */
  observe(path: string, method: string, status: number, ms: number) {
    const series = this.memo.get(path) ?? this.remember(path)
    const key = status * 8 + methodIndex(method)
    series.requests.set(key, (series.requests.get(key) ?? 0) + 1)
    series.latency.observe(ms / 1000)
  }

  /** The route template a path is served by, or `unmatched`. */
  routeOf(path: string): string {
    this.matcher ??= templateMatcher(this.templates())
    return this.matcher(path)
  }

  private remember(path: string): RouteSeries {
    const route = this.routeOf(path)
    let series = this.byRoute.get(route)
    if (!series) this.byRoute.set(route, (series = { route, requests: new Map(), latency: new HistogramSeries(HTTP_BUCKETS) }))
    if (this.memo.size >= 512) this.memo.clear()
    this.memo.set(path, series)
    return series
  }

  private *requestSamples(): Iterable<[Labels, number]> {
    for (const { route, requests } of this.byRoute.values()) {
      for (const [key, value] of requests) yield [{ route, method: METHODS[key % 8]!, status: String(Math.floor(key / 8)) }, value]
    }
  }
}

/**
 * Matches a path against route templates as the router does: `:name` takes one non-empty segment, `*` the
 * rest; literal segments win over parameters, and a trailing slash is ignored.
 */
export function templateMatcher(templates: Iterable<string>): (path: string) => string {
  const compiled = [...new Set(templates)]
    .map((template) => ({ template: stripSlash(template) || '/', segments: segmentsOf(template) }))
    // More literal segments first, and earlier ones weigh more: /api/cron/trigger before /api/cron/:id.
    .sort((a, b) => weight(b.segments) - weight(a.segments))
  return (path) => {
    const segments = segmentsOf(path)
    for (const { template, segments: pattern } of compiled) if (matches(pattern, segments)) return template
    return UNMATCHED
  }
}

const stripSlash = (path: string) => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path)
const segmentsOf = (path: string) => {
  const trimmed = stripSlash(path)
  return trimmed === '/' || trimmed === '' ? [] : trimmed.split('/').slice(1)
}

function weight(segments: string[]): number {
  let score = 0
  for (let i = 0; i < segments.length; i++) score += segments[i]!.startsWith(':') || segments[i] === '*' ? 0 : 2 ** (16 - Math.min(i, 16))
  return score
}

function matches(pattern: string[], segments: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i]!
    if (part === '*') return true
    const segment = segments[i]
    if (segment === undefined) return false
    if (part.startsWith(':')) {
      if (segment === '') return false
    } else if (part !== segment) return false
  }
  return segments.length === pattern.length
}

/** Everything counted, by what counts it. */
export class Metrics implements TurnObserver, DeliveryObserver, QueueObserver, CronObserver {
  readonly http = new HttpMetrics()
  readonly turns = new Counts('xopcbot_agent_turns_total', 'Agent turns by the model they ended on and how they ended (fallback: the model failed and the turn went on to the next one).', ['model', 'outcome'])
  readonly turnLatency = new Histograms('xopcbot_agent_turn_duration_seconds', 'Duration of agent turns (every model they tried) by the model they ended on.', ['model'], TURN_BUCKETS)
  readonly tokens = new Counts('xopcbot_agent_tokens_total', 'Tokens of answered agent turns by model and direction (input, output).', ['model', 'direction'])
  readonly deliveries = new Counts('xopcbot_delivery_attempts_total', 'Deliveries handed to a channel (each with the sender\'s own retries).', ['channel'])
  readonly deliveryFailures = new Counts('xopcbot_delivery_failures_total', 'Deliveries that failed.', ['channel'])
  readonly transitions = new Counts('xopcbot_inbound_transitions_total', 'Inbound messages entering a state.', ['state'])
  readonly cronRuns = new Counts('xopcbot_cron_runs_total', 'Cron runs recorded, by trigger (schedule, manual, catch-up) and outcome.', ['trigger', 'outcome'])
  readonly cronDelay = new Histograms('xopcbot_cron_firing_delay_seconds', 'How long after its due time a scheduled cron run started.', [], DELAY_BUCKETS)

  turn(model: string, outcome: TurnOutcome, seconds: number, tokens?: { input: number; output: number }) {
    this.turns.add([model, outcome])
    // A fallback is not the end of the turn: its time counts for the model the turn ends on.
    if (outcome !== 'fallback') this.turnLatency.observe([model], seconds)
    if (tokens) {
      this.tokens.add([model, 'input'], tokens.input)
      this.tokens.add([model, 'output'], tokens.output)
    }
  }

  delivery(channel: string, ok: boolean) {
    this.deliveries.add([channel])
    if (!ok) this.deliveryFailures.add([channel])
  }

  transition(state: string, count = 1) {
    if (count > 0) this.transitions.add([state], count)
  }

  cronRun(trigger: string, outcome: 'ok' | 'failed') {
    this.cronRuns.add([trigger, outcome])
  }

  cronFired(seconds: number) {
    this.cronDelay.observe([], Math.max(0, seconds))
  }

  counters(): CounterSource[] {
    return [this.http.requests, this.turns, this.tokens, this.deliveries, this.deliveryFailures, this.transitions, this.cronRuns]
  }

  histograms(): HistogramSource[] {
    return [this.http.latency, this.turnLatency, this.cronDelay]
  }
}
