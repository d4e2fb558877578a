import { afterAll, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from '../src/agent/agent'
import { SessionStore } from '../src/agent/sessions'
import { ChannelManager } from '../src/channels/manager'
import { PairingStore } from '../src/channels/pairing'
import { Senders } from '../src/channels/senders'
import { sign, WebhookSender } from '../src/channels/webhook'
import { Config } from '../src/config/schema'
import { CronJobs, CronRunner, CronService } from '../src/cron/service'
import { createLogger } from '../src/logging/logger'
import { InboundQueue } from '../src/messages/queue'
import { MessageWorker } from '../src/messages/worker'
import { openDatabase, StateStore } from '../src/storage/db'
import { retryDelay, RetryTimer, type Clock } from '../src/storage/faults'
import { WebhookEventLog } from '../src/storage/webhook-events'
import { startFakeLlm } from './fakes/llm'
import { startWebhookReceiver, type FakeReceiver } from './fakes/webhook-receiver'
import { readEvents } from './helpers/agent'
import { makeApp } from './helpers/app'
import { json } from './helpers/http'
import { waitFor } from './helpers/wait'

/** Retry timers on a clock that moves only when the test says so. */
class ManualClock implements Clock {
  time = 0
  private nextId = 1
  private readonly timers = new Map<number, { at: number; run: () => void }>()
  now = () => this.time
  setTimeout = (run: () => void, ms: number) => {
    const id = this.nextId++
    this.timers.set(id, { at: this.time + ms, run })
    return id
  }
  clearTimeout = (handle: unknown) => void this.timers.delete(handle as number)
  /** armed timers, as ms from now */
  get pending(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.time)
  }
  advance(ms: number) {
    this.time += ms
    for (const [id, timer] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at > this.time) continue
      this.timers.delete(id)
      timer.run()
    }
  }
}

const SECRET = 'a-webhook-secret-of-some-length'
const llm = startFakeLlm()
/** The fake model's reply to "big:…" is big enough that storing the turn needs new database pages (see fillDisk). */
const PADDING = ` ${'x'.repeat(60_000)}`
llm.fallback = (call) => ({ text: `echo: ${call.lastUser}${call.lastUser.startsWith('big:') ? PADDING : ''}` })
const receivers: FakeReceiver[] = []
afterAll(() => {
  llm.stop()
  for (const r of receivers) r.stop()
})

const { log } = createLogger({ level: 'error', console: false })

function config(receiverUrl: string) {
  return Config.parse({
    agent: { model: 'fake/echo', maxRetries: 0 },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } },
    channels: { myapp: { type: 'webhook', url: receiverUrl, secret: SECRET, retry: { attempts: 1, baseDelayMs: 10 } } },
  })
}

/** A real database, agent (on the fake LLM) and webhook channel (to a fake receiver), with retries on a manual clock. */
function world(receiver: { url: string } = (() => {
  const r = startWebhookReceiver(SECRET)
  receivers.push(r)
  return r
})()) {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-faults-')), 'xopcbot.db'))
  const cfg = config(receiver.url)
  const clock = new ManualClock()
  const store = new SessionStore(db)
  const agent = new Agent({ config: cfg, env: {}, store, log })
  const channelConfig = cfg.channels.myapp!
  if (channelConfig.type !== 'webhook') throw new Error('unreachable')
  const channel = new WebhookSender('myapp', channelConfig, { log })
  const queue = new InboundQueue({ db })
  const worker = new MessageWorker({ queue, agent, sender: (name) => (name === 'myapp' ? channel : undefined), log, clock })
  const jobs = new CronJobs({ db, log, defaultTimezone: 'UTC', sender: () => undefined, clock })
  const cron = new CronService({ jobs, runner: new CronRunner({ jobs, agent, sender: () => undefined, log, clock }) })
  /** From now on the database cannot grow (a real SQLITE_FULL): a big reply cannot be stored; small updates in place still work. */
  const fillDisk = () => {
    const { page_count } = db.query('PRAGMA page_count').get() as { page_count: number }
    db.run(`PRAGMA max_page_count = ${page_count}`)
  }
  const freeDisk = () => db.run('PRAGMA max_page_count = 1073741823')
  const callsFor = (tag: string) => llm.calls.filter((c) => c.lastUser === `big:${tag}`)
  return { db, clock, store, agent, queue, worker, cron, channel, fillDisk, freeDisk, callsFor }
}

/** Waits until the code under test has armed its retry timer, checks the delay it asked for, and lets it fire. */
async function retryFires(clock: ManualClock, expectedDelayMs: number) {
  await waitFor(() => clock.pending.length === 1, { what: `a retry in ${expectedDelayMs} ms` })
  expect(clock.pending).toEqual([expectedDelayMs])
  clock.advance(expectedDelayMs)
}

describe('retry timing', () => {
  test('backoff doubles from 1 s and is capped; one timer, armed only while something waits', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelay(n))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000])
    const clock = new ManualClock()
    const fired: string[] = []
    const timer = new RetryTimer<string>((key) => fired.push(key), clock)
    expect(timer.armed).toBe(false)
    timer.after('b', 2000)
    timer.after('a', 1000)
    expect(clock.pending).toEqual([1000])
    clock.advance(1000)
    expect(fired).toEqual(['a'])
    expect(clock.pending).toEqual([1000])
    clock.advance(1000)
    expect(fired).toEqual(['a', 'b'])
    expect(timer.armed).toBe(false)
    expect(clock.pending).toEqual([])
    timer.after('c', 500)
    timer.stop()
    clock.advance(1000)
    expect(fired).toEqual(['a', 'b'])
    expect(clock.pending).toEqual([])
  })
})

describe('the inbound queue after a storage fault', () => {
  test('a message whose turn could not be stored is tried again after 1 s, 2 s, and delivered once when storage is back; its chat keeps its order', async () => {
    const w = world()
    const receiver = receivers.at(-1)!
    const first = await w.queue.accept({ channel: 'myapp', chatId: 'c1', content: 'big:first' }, 'api')
    w.fillDisk()
    await retryFires(w.clock, 1000)
    expect(w.queue.get(first)!.state).toBe('processing')
    // Accepted while its chat waits: it waits behind the first message.
    w.freeDisk()
    const second = await w.queue.accept({ channel: 'myapp', chatId: 'c1', content: 'second' }, 'api')
    w.fillDisk()
    await waitFor(() => w.callsFor('first').length === 2 && w.clock.pending.length === 1, { what: 'the second attempt to fail' })
    expect(w.clock.pending).toEqual([2000])
    expect(w.worker.retrying()).toEqual({ messages: 2, outcomes: 0 })
    expect(llm.calls.filter((c) => c.lastUser === 'second')).toHaveLength(0)
    w.freeDisk()
    w.clock.advance(2000)
    await waitFor(() => w.queue.get(second)!.state === 'delivered', { what: 'both delivered' })
    expect(w.queue.get(first)).toMatchObject({ state: 'delivered', reply: `echo: big:first${PADDING}` })
    expect(receiver.received.map((d) => d.body.data.content.slice(0, 15))).toEqual(['echo: big:first', 'echo: second'])
    expect(w.callsFor('first')).toHaveLength(3)
    expect(w.store.get('myapp:c1')!.messages.map((m) => m.content.slice(0, 15))).toEqual(['big:first', 'echo: big:first', 'second', 'echo: second'])
    // Idle again: nothing is armed.
    expect(w.clock.pending).toEqual([])
    expect(w.worker.retrying()).toEqual({ messages: 0, outcomes: 0 })
  })

  test('a fault that persists: failed with the reason after 5 attempts (1, 2, 4, 8 s apart), never sent', async () => {
    const w = world()
    const receiver = receivers.at(-1)!
    const id = await w.queue.accept({ channel: 'myapp', chatId: 'c2', content: 'big:doomed' }, 'api')
    w.fillDisk()
    for (const delay of [1000, 2000, 4000, 8000]) await retryFires(w.clock, delay)
    const failed = await waitFor(() => (w.queue.get(id)!.state === 'failed' ? w.queue.get(id) : null), { what: 'the message to fail' })
    expect(failed!.error).toContain('the database could not be written in 5 attempts (SQLITE_FULL')
    expect(failed!.error).toContain('nothing was sent')
    expect(w.callsFor('doomed')).toHaveLength(5)
    expect(receiver.received).toHaveLength(0)
    expect(w.clock.pending).toEqual([])
  })

  test('a reply handed to the channel is never sent again: only its outcome is written again, once storage lets it', async () => {
    let locker: Database | null = null
    const deliveries: string[] = []
    // A receiver that, as it takes the reply, has another process hold the database's write lock.
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(request) {
        deliveries.push(((await request.json()) as any).data.content)
        locker!.run('BEGIN IMMEDIATE')
        return Response.json({ ok: true })
      },
    })
    try {
      const w = world({ url: `http://127.0.0.1:${server.port}/hook` })
      w.db.run('PRAGMA busy_timeout = 0')
      locker = new Database(w.db.filename)
      const id = await w.queue.accept({ channel: 'myapp', chatId: 'c3', content: 'once' }, 'api')
      await waitFor(() => w.clock.pending.length === 1, { what: 'the outcome write to be retried' })
      expect(w.worker.retrying()).toEqual({ messages: 0, outcomes: 1 })
      expect(w.queue.get(id)!.state).toBe('processing')
      locker.run('ROLLBACK')
      w.clock.advance(w.clock.pending[0]!)
      // The outcome is written in the next group commit.
      await waitFor(() => w.queue.get(id)!.state === 'delivered', { what: 'the outcome to be written' })
      expect(deliveries).toEqual(['echo: once'])
      expect(w.clock.pending).toEqual([])
      locker.close()
    } finally {
      server.stop(true)
    }
  })

  test('stop cancels pending retries at once; the message stays stored for the next start', async () => {
    const w = world()
    const id = await w.queue.accept({ channel: 'myapp', chatId: 'c4', content: 'big:later' }, 'api')
    w.fillDisk()
    await waitFor(() => w.clock.pending.length === 1, { what: 'a retry' })
    w.worker.stop()
    expect(w.clock.pending).toEqual([])
    expect(await w.worker.idle(1000)).toBe(true)
    expect(w.queue.get(id)!.state).toBe('processing')
  })
})

describe('cron runs after a storage fault', () => {
  test('a run whose turn could not be stored is tried again and recorded once as ok', async () => {
    const w = world()
    const job = w.cron.create({ schedule: '@yearly', message: 'big:cronjob' })
    w.fillDisk()
    const runId = w.cron.trigger(job.id)
    await retryFires(w.clock, 1000)
    await waitFor(() => w.callsFor('cronjob').length === 2 && w.clock.pending.length === 1, { what: 'the second attempt to fail' })
    expect(w.cron.runs(job.id)).toMatchObject([{ id: runId, status: 'running' }])
    w.freeDisk()
    w.clock.advance(2000)
    await waitFor(() => w.cron.runs(job.id)[0]!.status === 'ok', { what: 'the run to finish' })
    expect(w.cron.runs(job.id)).toHaveLength(1)
    expect(w.cron.runs(job.id)[0]!.reply).toBe(`echo: big:cronjob${PADDING}`)
    expect(w.callsFor('cronjob')).toHaveLength(3)
    expect(w.clock.pending).toEqual([])
  })

  test('a fault that persists: the run is recorded failed with the reason after 5 attempts', async () => {
    const w = world()
    const job = w.cron.create({ schedule: '@yearly', message: 'big:cronfail' })
    w.fillDisk()
    w.cron.trigger(job.id)
    for (const delay of [1000, 2000, 4000, 8000]) await retryFires(w.clock, delay)
    const run = await waitFor(() => (w.cron.runs(job.id)[0]!.status === 'failed' ? w.cron.runs(job.id)[0] : null), { what: 'the run to fail' })
    expect(run!.error).toContain('the database could not be written in 5 attempts (SQLITE_FULL')
    expect(w.callsFor('cronfail')).toHaveLength(5)
    expect(w.clock.pending).toEqual([])
  })
})

describe('storage faults are 503 on every route that writes', () => {
  test('while another process holds the write lock (SQLITE_BUSY): 503 UNAVAILABLE "nothing was stored" everywhere, streams included; then everything works again', async () => {
    const receiver = startWebhookReceiver(SECRET)
    receivers.push(receiver)
    const w = world(receiver)
    w.db.run('PRAGMA busy_timeout = 0')
    const pairing = new PairingStore(w.db)
    const senders = new Senders(config(receiver.url).channels, { log })
    const channels = new ChannelManager(config(receiver.url).channels, {
      intake: w.queue,
      senders,
      state: new StateStore(w.db),
      pairing,
      webhookEvents: new WebhookEventLog(w.db),
      log,
    })
    const { app } = makeApp({ agent: w.agent, sessions: w.store, senders, channels, queue: w.queue, cron: w.cron, pairing, maxBodyBytes: 1 << 20 })
    const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      app.handle(new Request(`http://localhost${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }))
    // Something to change: a session, a job, a pending pairing code.
    expect((await call('POST', '/api/agent', { message: 'hello', session: 's1' })).status).toBe(200)
    const job = w.cron.create({ schedule: '@yearly', message: 'yearly' })
    const pairingRequest = pairing.request({ channel: 'telegram', senderId: '42', chatId: '42' })
    if (pairingRequest.status !== 'created') throw new Error('expected a pairing code')
    const webhookBody = JSON.stringify({ event: 'message', data: { chat_id: 'w1', content: 'via webhook' } })
    const timestamp = Math.floor(Date.now() / 1000)

    const locker = new Database(w.db.filename)
    locker.run('BEGIN IMMEDIATE')
    const refused = {
      'POST /api/agent': await call('POST', '/api/agent', { message: 'during', session: 's1' }),
      'POST /v1/chat/completions': await call('POST', '/v1/chat/completions', { model: 'xopcbot', messages: [{ role: 'user', content: 'during' }] }),
      'DELETE /api/sessions/s1': await call('DELETE', '/api/sessions/s1'),
      'POST /api/message': await call('POST', '/api/message', { channel: 'myapp', chat_id: 'c', content: 'during' }),
      'POST /api/message/sync': await call('POST', '/api/message/sync', { channel: 'myapp', chat_id: 'c', content: 'during' }),
      'POST /api/webhook/myapp': await app.handle(
        new Request('http://localhost/api/webhook/myapp', { method: 'POST', headers: { 'content-type': 'application/json', 'x-xopcbot-timestamp': String(timestamp), 'x-xopcbot-signature': sign(SECRET, timestamp, webhookBody) }, body: webhookBody }),
      ),
      'POST /api/cron/create': await call('POST', '/api/cron/create', { schedule: '@daily', message: 'during' }),
      'POST /api/cron/:id/toggle': await call('POST', `/api/cron/${job.id}/toggle`, { enabled: false }),
      'POST /api/cron/trigger': await call('POST', '/api/cron/trigger', { job_id: job.id }),
      'DELETE /api/cron/:id': await call('DELETE', `/api/cron/${job.id}`),
      'POST /api/pairing/approve': await call('POST', '/api/pairing/approve', { code: pairingRequest.request.code }),
    }
    for (const [route, response] of Object.entries(refused)) {
      const body = await json(response)
      expect({ route, status: response.status, code: body.error?.code }).toEqual({ route, status: 503, code: 'UNAVAILABLE' })
      expect(body.error.message).toContain('SQLITE_BUSY')
      expect(body.error.message).toContain('nothing was stored, retry later')
    }
    // Streams have sent their headers already: the error event says UNAVAILABLE.
    const events = await readEvents(await call('POST', '/api/agent', { message: 'streamed during', session: 's1', stream: true }))
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'UNAVAILABLE' } } })
    expect(events.at(-1)!.data.error.message).toContain('nothing was stored')
    const chunks = (await (await call('POST', '/v1/chat/completions', { model: 'xopcbot', stream: true, messages: [{ role: 'user', content: 'streamed during' }] })).text())
      .split('\n\n')
      .filter((block) => block.startsWith('data: {'))
      .map((block) => JSON.parse(block.slice(6)))
    expect(chunks.at(-1)).toMatchObject({ error: { code: 'UNAVAILABLE', type: 'UNAVAILABLE' } })
    expect(w.store.get('s1')!.messages.map((m) => m.content)).toEqual(['hello', 'echo: hello'])
    expect(w.cron.runs(job.id)).toEqual([])

    locker.run('ROLLBACK')
    locker.close()
    expect((await call('POST', '/api/agent', { message: 'after', session: 's1' })).status).toBe(200)
    expect((await call('POST', '/api/cron/trigger', { job_id: job.id })).status).toBe(200)
    expect((await call('POST', '/api/pairing/approve', { code: pairingRequest.request.code })).status).toBe(200)
    expect((await call('POST', '/api/message', { channel: 'myapp', chat_id: 'c', content: 'after' })).status).toBe(202)
    expect(w.store.get('s1')!.messages.map((m) => m.content)).toEqual(['hello', 'echo: hello', 'after', 'echo: after'])
    w.worker.stop()
    w.cron.stop()
  })
})
