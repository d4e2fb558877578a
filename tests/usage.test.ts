import { afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from '../src/agent/agent'
import { SessionStore } from '../src/agent/sessions'
import { Config } from '../src/config/schema'
import { openDatabase } from '../src/storage/db'
import { startFakeLlm, type FakeLlm } from './fakes/llm'
import { postAgent } from './helpers/agent'
import { makeApp } from './helpers/app'
import { json } from './helpers/http'

// The fake LLM reports 11 input and 7 output tokens per call.
const fakes: FakeLlm[] = []
afterEach(() => {
  for (const fake of fakes.splice(0)) fake.stop()
})

function setup(agent: Record<string, unknown> = {}) {
  const first = startFakeLlm()
  const second = startFakeLlm()
  fakes.push(first, second)
  const config = Config.parse({
    agent: { model: { primary: 'one/model-a', fallbacks: ['two/model-b'] }, maxRetries: 0, ...agent },
    providers: { one: { type: 'openai-compatible', baseURL: `${first.url}/v1` }, two: { type: 'openai-compatible', baseURL: `${second.url}/v1` } },
    pricing: { 'one/model-a': { input: 1, output: 2 }, 'two/model-b': { input: 0.5, output: 4 } },
  })
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-usage-')), 'xopcbot.db'))
  const store = new SessionStore(db)
  const made = makeApp()
  const realAgent = new Agent({ config, env: {}, store, log: made.logger.log })
  const { app } = makeApp({ agent: realAgent, sessions: store, log: made.logger.log, pricing: config.pricing })
  const get = async (path: string) => {
    const response = await app.handle(new Request(`http://localhost${path}`))
    return { status: response.status, headers: response.headers, body: await json(response) }
  }
  return { first, second, app, store, agent: realAgent, get, logger: made.logger, logFile: made.logFile }
}

describe('GET /api/usage', () => {
  test('turns on two models, three sessions and channels: every grouping and the totals are exact, with cost', async () => {
    const s = setup()
    await postAgent(s.app, { message: 'a', session: 's1' })
    await postAgent(s.app, { message: 'b', session: 's1' })
    await s.agent.turn({ session: 'telegram:42', message: 'c', channel: 'telegram', chatId: '42' })
    s.first.queue.push({ status: 503 })
    const viaFallback = await s.agent.turn({ session: 'hook:7', message: 'd', channel: 'hook', chatId: '7' })
    expect(viaFallback.model).toBe('two/model-b')

    const byModel = await s.get('/api/usage?group_by=model')
    expect(byModel.status).toBe(200)
    expect(byModel.body.group_by).toBe('model')
    expect(byModel.body.rows).toEqual([
      { key: 'one/model-a', input_tokens: 33, output_tokens: 21, turns: 3, cost: 0.000075 },
      { key: 'two/model-b', input_tokens: 11, output_tokens: 7, turns: 1, cost: 0.0000335 },
    ])
    expect(byModel.body.total).toEqual({ input_tokens: 44, output_tokens: 28, turns: 4, cost: 0.0001085 })

    const bySession = await s.get('/api/usage?group_by=session')
    expect(bySession.body.rows.map((r: any) => [r.key, r.input_tokens, r.output_tokens, r.turns])).toEqual([
      ['hook:7', 11, 7, 1],
      ['s1', 22, 14, 2],
      ['telegram:42', 11, 7, 1],
    ])
    const byChannel = await s.get('/api/usage?group_by=channel')
    expect(byChannel.body.rows.map((r: any) => [r.key, r.turns, r.cost])).toEqual([
      ['(none)', 2, 0.00005],
      ['hook', 1, 0.0000335],
      ['telegram', 1, 0.000025],
    ])
    // Default: the last 30 days, by day.
    const byDay = await s.get('/api/usage')
    expect(byDay.body.group_by).toBe('day')
    expect(Date.parse(byDay.body.until) - Date.parse(byDay.body.since)).toBe(30 * 24 * 3600 * 1000)
    expect(byDay.body.rows).toEqual([{ key: new Date().toISOString().slice(0, 10), input_tokens: 44, output_tokens: 28, turns: 4, cost: 0.0001085 }])

    // Deleting a conversation does not undo what it used; a range without turns is empty.
    s.store.delete('s1')
    expect((await s.get('/api/usage?since=1h')).body.total).toMatchObject({ input_tokens: 44, turns: 4 })
    const past = await s.get('/api/usage?since=2000-01-01&until=2000-01-02T00:00:00Z')
    expect(past.body).toMatchObject({ since: '2000-01-01T00:00:00.000Z', until: '2000-01-02T00:00:00.000Z', rows: [], total: { input_tokens: 0, output_tokens: 0, turns: 0 } })

    // The assistant message records its model; the user message none.
    expect(s.store.get('hook:7')!.messages.map((m) => m.model)).toEqual([undefined, 'two/model-b'])
  })

  test('bad query parameters are a 400 that names the field', async () => {
    const s = setup()
    const cases: [string, string][] = [
      ['since=yesterday', 'since'],
      ['until=7x', 'until'],
      ['since=2024-02-30', 'since'],
      ['group_by=week', 'group_by'],
      ['since=1h&until=2d', 'since: must be before until'],
    ]
    for (const [query, field] of cases) {
      const { status, body } = await s.get(`/api/usage?${query}`)
      expect(status, query).toBe(400)
      expect(body.error.code).toBe('INVALID_REQUEST')
      expect(body.error.message, query).toContain(field)
    }
  })

  test('/api/usage is listed in the OpenAPI document with its query parameters', async () => {
    const s = setup()
    const doc = (await s.get('/openapi.json')).body
    expect(doc.paths['/api/usage'].get.parameters.map((p: any) => p.name)).toEqual(['since', 'until', 'group_by'])
  })
})

describe('agent.budget.dailyTokens', () => {
  test("refuses turns once today's tokens reach it, says until when, logs it once; status shows it", async () => {
    const s = setup({ budget: { dailyTokens: 30 } })
    expect((await postAgent(s.app, { message: 'one' })).status).toBe(200)
    expect((await s.get('/api/status')).body.usage_today).toMatchObject({ input_tokens: 11, output_tokens: 7, turns: 1, budget: { daily_tokens: 30, used: 18, exhausted: false } })
    expect((await postAgent(s.app, { message: 'two' })).status).toBe(200)
    const calls = s.first.calls.length

    const refused = await postAgent(s.app, { message: 'three' })
    expect(refused.status).toBe(429)
    const midnight = new Date()
    midnight.setUTCHours(24, 0, 0, 0)
    const { error } = await json(refused)
    expect(error.code).toBe('AGENT_ERROR')
    expect(error.message).toContain('agent.budget.dailyTokens: 30')
    expect(error.message).toContain(midnight.toISOString())
    const retryAfter = Number(refused.headers.get('retry-after'))
    expect(Math.abs(retryAfter - (midnight.getTime() - Date.now()) / 1000)).toBeLessThan(5)
    expect((await postAgent(s.app, { message: 'four' })).status).toBe(429)
    expect(s.first.calls.length).toBe(calls)

    const status = (await s.get('/api/status')).body
    expect(status.usage_today).toEqual({ input_tokens: 22, output_tokens: 14, turns: 2, budget: { daily_tokens: 30, used: 36, exhausted: true, resets_at: midnight.toISOString() } })
    s.logger.file!.flush()
    const lines = (await Bun.file(s.logFile).text()).trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.filter((l) => l.msg?.startsWith('daily token budget used up'))).toHaveLength(1)
  })

  test("today's totals come from the database after a restart", async () => {
    const s = setup()
    await postAgent(s.app, { message: 'one' })
    const db = (s.store as any).db
    const again = new SessionStore(db)
    expect(again.usage.todayTotals(new Date())).toEqual({ input_tokens: 11, output_tokens: 7, turns: 1 })
  })
})

test('pricing and budget mistakes in the config name the key', () => {
  const issues = (config: unknown) => Config.safeParse(config).error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  expect(issues({ pricing: { 'gpt-4o': { input: 1, output: 2 } } })).toEqual(['pricing.gpt-4o: must be a model as "<provider>/<model id>", e.g. "openai/gpt-4o-mini"'])
  expect(issues({ pricing: { 'openai/gpt-4o': { input: -1, output: '2' } } })).toEqual(['pricing.openai/gpt-4o.input: must not be negative', 'pricing.openai/gpt-4o.output: must be a number (USD per million tokens)'])
  expect(issues({ agent: { budget: { dailyTokens: 0 } } })).toEqual(['agent.budget.dailyTokens: must be at least 1'])
})
