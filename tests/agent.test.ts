import { afterEach, describe, expect, test } from 'bun:test'
import { makeAgentApp, postAgent, readEvents, type AgentSetup } from './helpers/agent'
import { freePort } from './helpers/gateway'
import { json } from './helpers/http'
import { waitFor } from './helpers/wait'

const setups: AgentSetup[] = []
function setup(options: Parameters<typeof makeAgentApp>[0] = {}) {
  const made = makeAgentApp(options)
  setups.push(made)
  return made
}
afterEach(() => {
  for (const s of setups.splice(0)) s.fake.stop()
})

const get = (s: AgentSetup, path: string, init: RequestInit = {}) => s.app.handle(new Request(`http://localhost${path}`, init))

for (const protocol of ['openai', 'anthropic'] as const) {
  describe(`a turn (${protocol} protocol)`, () => {
    test('gets a reply, and the next turn carries the history', async () => {
      const s = setup({ protocol })
      s.fake.queue.push({ text: 'Hi! How can I help?' }, { text: 'You said hello before.' })
      const first = await postAgent(s.app, { message: 'Hello', session: 'chat-1' })
      expect(first.status).toBe(200)
      expect(await json(first)).toEqual({ status: 'ok', reply: 'Hi! How can I help?', session: 'chat-1', model: protocol === 'openai' ? 'openai/gpt-test' : 'anthropic/claude-test' })
      const second = await postAgent(s.app, { message: 'What did I say?', session: 'chat-1' })
      expect((await json(second)).reply).toBe('You said hello before.')
      const sent = JSON.stringify(s.fake.calls[1]!.body.messages)
      expect(sent).toContain('Hello')
      expect(sent).toContain('Hi! How can I help?')
      expect(sent).toContain('What did I say?')
      const body = s.fake.calls[1]!.body
      expect(JSON.stringify(body.system ?? body.messages[0])).toContain('xopcbot')
    })

    test('a tool call is executed and its result fed back', async () => {
      const s = setup({ protocol })
      s.fake.queue.push({ toolCalls: [{ name: 'time', input: { timezone: 'Asia/Tokyo' } }] }, { text: 'It is late in Tokyo.' })
      const response = await postAgent(s.app, { message: 'What time is it in Tokyo?' })
      expect(await json(response)).toMatchObject({ status: 'ok', reply: 'It is late in Tokyo.' })
      expect(s.fake.calls).toHaveLength(2)
      const tools = JSON.stringify(s.fake.calls[0]!.body.tools)
      expect(tools).toContain('time')
      const fedBack = JSON.stringify(s.fake.calls[1]!.body.messages)
      expect(fedBack).toContain('Asia/Tokyo')
      expect(fedBack).toContain(String(new Date().getUTCFullYear()))
      const history = s.store.get('default')!.messages.map((m) => m.role)
      expect(history).toEqual(['user', 'assistant', 'tool', 'assistant'])
    })

    test('SSE: deltas arrive before the turn ends and join to the reply', async () => {
      const s = setup({ protocol })
      s.fake.queue.push({ text: 'one two three four five', chunkDelayMs: 60 })
      const response = await postAgent(s.app, { message: 'count', stream: true })
      expect(response.headers.get('content-type')).toContain('text/event-stream')
      let providerStillSendingAtFirstDelta: boolean | undefined
      const events = await readEvents(response, (e) => {
        if (e.event === 'delta' && providerStillSendingAtFirstDelta === undefined) providerStillSendingAtFirstDelta = s.fake.calls[0]!.finishedAt === undefined
      })
      expect(providerStillSendingAtFirstDelta).toBe(true)
      const deltas = events.filter((e) => e.event === 'delta').map((e) => e.data.text)
      expect(deltas.length).toBeGreaterThan(2)
      const done = events.at(-1)!
      expect(done.event).toBe('done')
      expect(done.data).toEqual({ reply: 'one two three four five', session: 'default', model: protocol === 'openai' ? 'openai/gpt-test' : 'anthropic/claude-test' })
      expect(deltas.join('')).toBe(done.data.reply)
    })
  })
}

describe('turn limits and faults', () => {
  test('agent.maxSteps stops a model that calls tools forever; nothing is stored', async () => {
    const s = setup({ agent: { maxSteps: 3 } })
    s.fake.fallback = () => ({ toolCalls: [{ name: 'time', input: {} }] })
    const response = await postAgent(s.app, { message: 'loop', session: 'loopy' })
    expect(response.status).toBe(502)
    const body = await json(response)
    expect(body.error.code).toBe('AGENT_ERROR')
    expect(body.error.message).toContain('agent.maxSteps (3)')
    expect(s.fake.calls).toHaveLength(3)
    expect(s.store.get('loopy')).toBeNull()
  })

  const faults: [string, Parameters<typeof setup>[0], (s: AgentSetup) => void, number, string][] = [
    ['provider 500', {}, (s) => s.fake.queue.push({ status: 500 }), 502, 'HTTP 500'],
    ['provider 429', {}, (s) => s.fake.queue.push({ status: 429, body: '{"error":{"message":"slow down"}}' }), 502, 'HTTP 429'],
    ['malformed JSON', {}, (s) => s.fake.queue.push({ malformed: true }), 502, 'could not be understood'],
    ['a reply slower than timeoutMs', { agent: { timeoutMs: 300 } }, (s) => s.fake.queue.push({ text: 'late', delayMs: 2000 }), 504, 'agent.timeoutMs (300 ms)'],
  ]
  for (const [name, options, arrange, status, message] of faults) {
    test(`${name} → ${status} AGENT_ERROR; history unchanged; still serving`, async () => {
      const s = setup(options)
      s.fake.queue.push({ text: 'first answer' })
      await postAgent(s.app, { message: 'first', session: 'f' })
      arrange(s)
      const response = await postAgent(s.app, { message: 'second', session: 'f' })
      expect(response.status).toBe(status)
      const body = await json(response)
      expect(body.error.code).toBe('AGENT_ERROR')
      expect(body.error.message).toContain(message)
      expect(s.store.get('f')!.messages.map((m) => m.content)).toEqual(['first', 'first answer'])
      expect((await get(s, '/health')).status).toBe(200)
      s.fake.queue.push({ text: 'recovered' })
      expect((await json(await postAgent(s.app, { message: 'third', session: 'f' }))).reply).toBe('recovered')
    })
  }

  test('connection refused → 502 naming the provider address', async () => {
    const port = await freePort()
    const s = setup({ providers: { openai: { apiKey: 'k-123456', baseURL: `http://127.0.0.1:${port}/v1` } } })
    const response = await postAgent(s.app, { message: 'anyone there?' })
    expect(response.status).toBe(502)
    const body = await json(response)
    expect(body.error.message).toContain('cannot reach the model provider "openai"')
    expect(body.error.message).toContain(`127.0.0.1:${port}`)
  })

  test('a failed turn is logged in full', async () => {
    const s = setup()
    s.fake.queue.push({ status: 503, body: 'upstream overloaded' })
    await postAgent(s.app, { message: 'x' })
    s.logger.file!.flush()
    const lines = (await Bun.file(s.logFile).text()).trim().split('\n').map((l) => JSON.parse(l))
    const failure = lines.find((l) => l.msg === 'turn failed')
    expect(failure).toMatchObject({ tag: 'agent', provider: 'openai', model: 'gpt-test' })
    expect(failure.reason).toContain('upstream overloaded')
  })

  test('a missing API key or an unknown provider says exactly what to set; other routes keep working', async () => {
    const noKey = setup({ providers: {} })
    const response = await postAgent(noKey.app, { message: 'hi' })
    expect(response.status).toBe(502)
    expect((await json(response)).error.message).toBe('no API key for provider "openai": set OPENAI_API_KEY or providers.openai.apiKey')
    expect((await get(noKey, '/api/sessions')).status).toBe(200)

    const fromEnv = setup({ providers: {}, env: { OPENAI_API_KEY: 'sk-from-env' } })
    expect(fromEnv.agent.model).not.toBeInstanceOf(Error)

    const unknown = setup({ agent: { model: 'mystery/model-x' } })
    const unknownResponse = await postAgent(unknown.app, { message: 'hi' })
    expect((await json(unknownResponse)).error.message).toContain('unknown provider "mystery"')
  })

  test('a client that goes away aborts the model call and stores nothing', async () => {
    const s = setup()
    s.fake.queue.push({ text: 'too late', delayMs: 1500 })
    const controller = new AbortController()
    const pending = postAgent(s.app, { message: 'never mind', session: 'gone' }, { signal: controller.signal }).catch(() => 'aborted')
    await waitFor(() => s.fake.calls.length === 1, { what: 'the provider call' })
    controller.abort()
    await pending
    await waitFor(() => s.fake.calls[0]!.aborted !== undefined, { what: 'the provider to notice', timeoutMs: 5000 })
    expect(s.fake.calls[0]!.aborted).toBe(true)
    await waitFor(async () => (await s.agent.idle(10)) === true, { what: 'the turn to end' })
    expect(s.store.get('gone')).toBeNull()
  })
})

describe('concurrency', () => {
  test('20 concurrent requests over 5 sessions: all succeed; per session in order and never overlapping; sessions in parallel', async () => {
    const s = setup({ agent: { concurrency: 4 } })
    s.fake.fallback = (call) => ({ text: `re: ${call.lastUser}`, delayMs: 40 })
    const requests: Promise<Response>[] = []
    for (let i = 0; i < 4; i++) for (let k = 0; k < 5; k++) requests.push(postAgent(s.app, { message: `s${k}-${i}`, session: `s${k}` }))
    const responses = await Promise.all(requests)
    for (const response of responses) expect(response.status).toBe(200)
    for (let k = 0; k < 5; k++) {
      const calls = s.fake.calls.filter((c) => c.lastUser.startsWith(`s${k}-`))
      expect(calls).toHaveLength(4)
      for (let i = 1; i < calls.length; i++) expect(calls[i]!.startedAt).toBeGreaterThanOrEqual(calls[i - 1]!.finishedAt!)
      const stored = s.store.get(`s${k}`)!.messages.map((m) => m.content)
      const order = calls.map((c) => c.lastUser)
      expect(stored).toEqual(order.flatMap((m) => [m, `re: ${m}`]))
      expect([...order].sort()).toEqual([`s${k}-0`, `s${k}-1`, `s${k}-2`, `s${k}-3`])
    }
    const overlaps = (t: number) => s.fake.calls.filter((c) => c.startedAt <= t && c.finishedAt! > t).length
    const peak = Math.max(...s.fake.calls.map((c) => overlaps(c.startedAt)))
    expect(peak).toBeGreaterThan(1)
    expect(peak).toBeLessThanOrEqual(4)
  })
})

describe('sessions API and bad input', () => {
  test('list (newest first, limit/offset/channel, total), get in order, delete', async () => {
    const s = setup()
    for (const key of ['a', 'b', 'c']) await postAgent(s.app, { message: `hello ${key}`, session: key })
    await s.store.appendTurn('telegram:42', { channel: 'telegram', chatId: '42', messages: [{ role: 'user', content: 'from telegram' }], at: new Date(Date.now() + 1000).toISOString() })
    const all = await json(await get(s, '/api/sessions'))
    expect(all.total).toBe(4)
    expect(all.sessions.map((x: any) => x.key)).toEqual(['telegram:42', 'c', 'b', 'a'])
    expect(all.sessions[1]).toMatchObject({ key: 'c', channel: null, chat_id: null, message_count: 2 })
    const page = await json(await get(s, '/api/sessions?limit=2&offset=1'))
    expect(page.sessions.map((x: any) => x.key)).toEqual(['c', 'b'])
    expect(page.total).toBe(4)
    const telegram = await json(await get(s, '/api/sessions?channel=telegram'))
    expect(telegram).toMatchObject({ total: 1, sessions: [{ key: 'telegram:42', channel: 'telegram', chat_id: '42' }] })

    const one = await json(await get(s, '/api/sessions/telegram%3A42'))
    expect(one.session.messages).toEqual([{ role: 'user', content: 'from telegram', created_at: expect.any(String) }])
    const b = await json(await get(s, '/api/sessions/b'))
    expect(b.session.messages.map((m: any) => [m.role, m.content])).toEqual([
      ['user', 'hello b'],
      ['assistant', 'echo: hello b'],
    ])

    expect((await json(await get(s, '/api/sessions/b', { method: 'DELETE' }))).status).toBe('ok')
    const gone = await get(s, '/api/sessions/b')
    expect(gone.status).toBe(404)
    expect((await json(gone)).error.code).toBe('SESSION_NOT_FOUND')
    expect((await get(s, '/api/sessions/b', { method: 'DELETE' })).status).toBe(404)
  })

  test('bad input on every route → documented errors naming the field', async () => {
    const s = setup()
    const cases: [Promise<Response>, number, string][] = [
      [postAgent(s.app, {}), 400, 'message: is required'],
      [postAgent(s.app, { message: '' }), 400, 'message: must be a non-empty string'],
      [postAgent(s.app, { message: 42 }), 400, 'message: must be a string'],
      [postAgent(s.app, { message: 'x'.repeat(100_001) }), 413, 'gateway.maxBodyBytes'],
      [postAgent(s.app, { message: 'hi', session: 'bad key!' }), 400, 'session: must be 1-128 characters'],
      [postAgent(s.app, { message: 'hi', stream: 'yes' }), 400, 'stream: must be true or false'],
      [postAgent(s.app, { message: 'hi', extra: 1 }), 400, 'extra: unknown field'],
      [postAgent(s.app, '{"message": "hi"'), 400, 'body: is not valid JSON'],
      [get(s, '/api/sessions?limit=0'), 400, 'query.limit: must be at least 1'],
      [get(s, '/api/sessions?offset=-1'), 400, 'query.offset: must be a whole number'],
      [postAgent(s.app, { message: 'hi', session: '..' }), 400, 'session: must not be "." or ".."'],
      [get(s, '/api/sessions/' + 'k'.repeat(290)), 400, 'params.key: must be at most 289 characters'],
      [get(s, '/api/sessions/a%ZZ'), 400, 'params.key: must be a session key encoded with encodeURIComponent'],
      [get(s, '/api/sessions/' + encodeURIComponent('with spaces/and slash')), 404, 'no session "with spaces/and slash"'],
      [get(s, '/api/sessions/unknown-one'), 404, 'no session "unknown-one"'],
    ]
    for (const [pending, status, message] of cases) {
      const response = await pending
      const body = await json(response)
      expect({ status: response.status, message: body.error?.message }).toMatchObject({ status, message: expect.stringContaining(message) })
    }
    expect(s.fake.calls).toHaveLength(0)
  })
})

describe('tools offered', () => {
  test('only the tools listed in agent.tools are offered to the model', async () => {
    const none = setup({ agent: { tools: [] } })
    await postAgent(none.app, { message: 'hi' })
    expect(none.fake.calls[0]!.body.tools).toBeUndefined()
    const withTime = setup({ agent: { tools: ['time'] } })
    await postAgent(withTime.app, { message: 'hi' })
    expect(withTime.fake.calls[0]!.body.tools.map((t: any) => t.function.name)).toEqual(['time'])
  })
})
