import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import parsePrometheus, { type MetricFamily, type Sample } from 'parse-prometheus-text-format'
import { Metrics, templateMatcher, UNMATCHED } from '../src/metrics/recorder'
import { authModeFor } from '../src/server/auth'
import { makeWorld, type World } from './helpers/channels'
import { writeConfig, type RunningGateway } from './helpers/gateway'
import { json } from './helpers/http'
import { waitFor } from './helpers/wait'

const TOKEN = 'metrics-test-token-0123456789abcdef'

describe('route templates', () => {
  const match = templateMatcher(['/health', '/api/sessions/', '/api/sessions/:key', '/api/cron/trigger', '/api/cron/:id', '/api/cron/:id/runs', '/', '/files/*'])

  test('a path is labelled with the template that serves it, never with its own spelling', () => {
    expect(match('/api/sessions/alpha')).toBe('/api/sessions/:key')
    expect(match('/api/sessions/alpha/')).toBe('/api/sessions/:key')
    expect(match('/api/sessions')).toBe('/api/sessions')
    expect(match('/api/sessions/')).toBe('/api/sessions')
    // A literal segment wins over a parameter, as in the router.
    expect(match('/api/cron/trigger')).toBe('/api/cron/trigger')
    expect(match('/api/cron/j1')).toBe('/api/cron/:id')
    expect(match('/api/cron/j1/runs')).toBe('/api/cron/:id/runs')
    expect(match('/')).toBe('/')
    expect(match('/files/a/b/c')).toBe('/files/*')
  })

  test('paths that no route serves share one label', () => {
    for (const path of ['/nope', '/api/sessions/a/b', '/api//sessions', '/api/cron/j1/runs/x', '/health/x']) expect(match(path), path).toBe(UNMATCHED)
  })

  test('requests are counted per template, method and status, with their latency', async () => {
    const metrics = new Metrics()
    metrics.http.useRoutes(() => ['/api/sessions/:key'])
    metrics.http.observe('/api/sessions/a', 'GET', 404, 2)
    metrics.http.observe('/api/sessions/b', 'GET', 404, 3)
    metrics.http.observe('/api/sessions/c', 'BREW', 200, 1)
    metrics.http.observe('/elsewhere', 'GET', 404, 1)
    expect([...metrics.http.requests.samples()]).toEqual([
      [{ route: '/api/sessions/:key', method: 'GET', status: '404' }, 2],
      [{ route: '/api/sessions/:key', method: 'OTHER', status: '200' }, 1],
      [{ route: UNMATCHED, method: 'GET', status: '404' }, 1],
    ])
    const latencies = [...metrics.http.latency.samples()]
    expect(latencies.map(([labels]) => labels)).toEqual([{ route: '/api/sessions/:key' }, { route: UNMATCHED }])
    const latency = latencies[0]![1]
    expect(latency.count).toBe(3)
    expect(latency.sum).toBeCloseTo(0.006, 9)
  })

  test('/metrics needs what /api/* needs', () => {
    expect(authModeFor('/metrics')).toBe('default')
  })
})

/** Samples of a scrape by metric name. */
type Scrape = Map<string, MetricFamily>

const matchesLabels = (sample: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)

/** A counter's or gauge's value (0 when the series is not there yet). */
function valueOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const sample = scrape.get(name)?.metrics.find((s) => matchesLabels(s, labels))
  return sample?.value === undefined ? 0 : Number(sample.value)
}

/**
 * A histogram series' count, sum and buckets (0 when not there yet). parse-prometheus-text-format 1.1 folds
 * every series of a histogram into one and drops their labels, so the one series is cut out of the text first
 * (its labels removed) and parsed alone.
 */
function histogramOf(text: string, name: string, labels: Record<string, string> = {}) {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`)
  const lines = text
    .split('\n')
    .filter((line) => /^\w+/.exec(line)?.[0]?.startsWith(`${name}_`) && wanted.every((label) => line.includes(label)))
    .map((line) =>
      line.replace(/\{([^}]*)\}/, (_, inner: string) => {
        const rest = inner.split(',').filter((part) => !wanted.includes(part))
        return rest.length ? `{${rest.join(',')}}` : ''
      }),
    )
  const sample = parsePrometheus(`# TYPE ${name} histogram\n${lines.join('\n')}\n`)[0]?.metrics[0]
  return { count: Number(sample?.count ?? 0), sum: Number(sample?.sum ?? 0), buckets: sample?.buckets ?? {} }
}

describe('GET /metrics on a running gateway', () => {
  let world: World
  let gateway: RunningGateway
  const auth = { authorization: `Bearer ${TOKEN}` }
  const api = (path: string, init: RequestInit = {}) => fetch(`${gateway.url}${path}`, { ...init, headers: { ...auth, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } })
  const post = (path: string, body: unknown) => api(path, { method: 'POST', body: JSON.stringify(body) })

  async function scrape(): Promise<{ text: string; metrics: Scrape }> {
    const response = await fetch(`${gateway.url}/metrics`, { headers: auth })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await response.text()
    return { text, metrics: new Map(parsePrometheus(text).map((family) => [family.name, family])) }
  }

  beforeAll(async () => {
    world = await makeWorld()
    world.config.gateway.auth = { token: TOKEN }
    writeConfig(world.home, world.config)
    gateway = await world.start()
  })

  afterAll(async () => {
    if (gateway?.proc.exitCode === null) await gateway.stop()
    world?.stop()
  })

  test('needs the token like /api/*: 401 without it or with a wrong one', async () => {
    const without = await fetch(`${gateway.url}/metrics`)
    expect(without.status).toBe(401)
    expect((await json(without)).error.code).toBe('UNAUTHORIZED')
    const wrong = await fetch(`${gateway.url}/metrics`, { headers: { authorization: 'Bearer not-the-token-at-all' } })
    expect(wrong.status).toBe(401)
    const right = await fetch(`${gateway.url}/metrics`, { headers: auth })
    expect(right.status).toBe(200)
    expect(right.headers.get('x-request-id')).toBeTruthy()
  })

  test('counts requests, turns, tokens, deliveries, queue moves and cron runs with the right labels', async () => {
    const model = 'fake/echo'
    // Channels come up in the background: the gauge is read once both are running.
    await waitFor(async () => {
      const status = await json(await api('/api/status'))
      return status.channels.telegram.state === 'running' && status.channels.myapp.state === 'running'
    }, { what: 'channels running' })
    const { text: beforeText, metrics: before } = await scrape()

    // An answered turn (the fake reports 11 input and 7 output tokens) and a failed one.
    const turn = await post('/api/agent', { message: 'hello metrics', session: 'metrics-1' })
    expect(turn.status).toBe(200)
    world.llm.queue.push({ status: 500, body: '{"error":{"message":"boom"}}' })
    expect((await post('/api/agent', { message: 'fail please', session: 'metrics-2' })).status).toBe(502)

    // A message through the queue, answered by the agent and delivered to the webhook receiver.
    const accepted = await post('/api/message', { channel: 'myapp', chat_id: 'room-9', content: 'ping' })
    expect(accepted.status).toBe(202)
    const { message_id } = await json(accepted)
    await waitFor(async () => (await json(await api(`/api/message/${message_id}`))).message.state === 'delivered', { what: 'the delivery' })

    // A delivery the receiver refuses for good.
    world.receiver.statuses.push(400)
    expect((await post('/api/send', { channel: 'myapp', chat_id: 'room-9', content: 'refused' })).status).toBe(502)

    // A cron job run by hand, and a one-shot the scheduler fires.
    const job = (await json(await post('/api/cron/create', { name: 'by hand', schedule: '0 0 1 1 *', mode: 'direct', message: 'tick', channel: 'myapp', chat_id: 'room-9' }))).job
    expect((await post('/api/cron/trigger', { job_id: job.id })).status).toBe(200)
    const dueAt = new Date(Date.now() + 1500).toISOString()
    const oneShot = (await json(await post('/api/cron/create', { name: 'soon', schedule: dueAt, mode: 'direct', message: 'tock', channel: 'myapp', chat_id: 'room-9' }))).job
    for (const id of [job.id, oneShot.id]) {
      await waitFor(async () => (await json(await api(`/api/cron/${id}/runs`))).runs.find((run: { status: string }) => run.status === 'ok'), { what: `a run of ${id}`, timeoutMs: 15_000 })
    }

    // A session key of the client's choosing, and a path no route serves.
    const secretish = `s-${crypto.randomUUID()}`
    expect((await api(`/api/sessions/${secretish}`)).status).toBe(404)
    expect((await api(`/nope-${secretish}`)).status).toBe(404)

    const { text, metrics: after } = await scrape()
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels)
    const histogramDelta = (name: string, labels: Record<string, string> = {}) => histogramOf(text, name, labels).count - histogramOf(beforeText, name, labels).count

    // HTTP: by route template, never the raw path.
    expect(delta('xopcbot_http_requests_total', { route: '/api/agent', method: 'POST', status: '200' })).toBe(1)
    expect(delta('xopcbot_http_requests_total', { route: '/api/agent', method: 'POST', status: '502' })).toBe(1)
    expect(delta('xopcbot_http_requests_total', { route: '/api/message', method: 'POST', status: '202' })).toBe(1)
    expect(delta('xopcbot_http_requests_total', { route: '/api/sessions/:key', method: 'GET', status: '404' })).toBe(1)
    expect(delta('xopcbot_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1)
    expect(histogramDelta('xopcbot_http_request_duration_seconds', { route: '/api/agent' })).toBe(2)
    expect(text).not.toContain(secretish)
    expect(after.get('xopcbot_http_request_duration_seconds')!.type).toBe('HISTOGRAM')

    // Agent: turns by model and outcome, tokens as the fake LLM reported them, latency by model.
    expect(delta('xopcbot_agent_turns_total', { model, outcome: 'ok' })).toBe(2)
    expect(delta('xopcbot_agent_turns_total', { model, outcome: 'error' })).toBe(1)
    expect(delta('xopcbot_agent_tokens_total', { model, direction: 'input' })).toBe(22)
    expect(delta('xopcbot_agent_tokens_total', { model, direction: 'output' })).toBe(14)
    expect(histogramDelta('xopcbot_agent_turn_duration_seconds', { model })).toBe(3)

    // Deliveries: the queued reply, /api/send (refused), the manual and the scheduled cron run.
    expect(delta('xopcbot_delivery_attempts_total', { channel: 'myapp' })).toBe(4)
    expect(delta('xopcbot_delivery_failures_total', { channel: 'myapp' })).toBe(1)

    // The queue: the message's moves, and its depth read at scrape time.
    for (const state of ['queued', 'processing', 'delivering', 'delivered']) expect(delta('xopcbot_inbound_transitions_total', { state }), state).toBe(1)
    expect(delta('xopcbot_inbound_messages', { state: 'delivered' })).toBe(1)
    expect(valueOf(after, 'xopcbot_inbound_messages', { state: 'queued' })).toBe(0)

    // Cron: runs by trigger and outcome; the scheduled one's delay after its due time.
    expect(delta('xopcbot_cron_runs_total', { trigger: 'manual', outcome: 'ok' })).toBe(1)
    expect(delta('xopcbot_cron_runs_total', { trigger: 'schedule', outcome: 'ok' })).toBe(1)
    const firing = histogramOf(text, 'xopcbot_cron_firing_delay_seconds')
    expect(firing.count - histogramOf(beforeText, 'xopcbot_cron_firing_delay_seconds').count).toBe(1)
    expect(firing.buckets['+Inf']).toBe(String(firing.count))
    expect(firing.sum).toBeGreaterThanOrEqual(0)
    expect(firing.sum).toBeLessThan(5)

    // Channel states, one series per state.
    expect(valueOf(after, 'xopcbot_channel_state', { channel: 'myapp', type: 'webhook', state: 'running' })).toBe(1)
    expect(valueOf(after, 'xopcbot_channel_state', { channel: 'myapp', type: 'webhook', state: 'failed' })).toBe(0)
    expect(valueOf(after, 'xopcbot_channel_state', { channel: 'telegram', type: 'telegram', state: 'running' })).toBe(1)
    expect(valueOf(after, 'xopcbot_channel_state', { channel: 'off', type: 'webhook', state: 'disabled' })).toBe(1)

    // Process metrics on our own registry; those meaningless under Bun are left out.
    expect(valueOf(after, 'xopcbot_process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(valueOf(after, 'xopcbot_process_resident_memory_bytes')).toBeGreaterThan(0)
    expect(after.get('xopcbot_build_info')!.metrics[0]!.labels).toMatchObject({ version: expect.any(String), bun: Bun.version })
    for (const dropped of ['xopcbot_process_heap_bytes', 'xopcbot_nodejs_gc_duration_seconds', 'xopcbot_nodejs_active_handles_total', 'xopcbot_nodejs_heap_space_size_used_bytes']) expect(after.has(dropped), dropped).toBe(false)
  }, 40_000)
})
