import { afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from '../src/agent/agent'
import { SessionStore } from '../src/agent/sessions'
import type { AgentTool } from '../src/agent/tools'
import { z } from 'zod'
import { Config } from '../src/config/schema'
import { openDatabase } from '../src/storage/db'
import { startFakeLlm, type FakeLlm } from './fakes/llm'
import { postAgent, readEvents } from './helpers/agent'
import { makeApp } from './helpers/app'
import { freePort } from './helpers/gateway'
import { json } from './helpers/http'

const PRIMARY_KEY = 'sk-primary-secret-1234567890'
const fakes: FakeLlm[] = []
afterEach(() => {
  for (const fake of fakes.splice(0)) fake.stop()
})

/** Two real fake providers: `one/model-a` is the primary, `two/model-b` its fallback. */
function chain({ agent = {}, primaryUrl, providers = {}, tools }: { agent?: Record<string, unknown>; primaryUrl?: string; providers?: Record<string, unknown>; tools?: AgentTool[] } = {}) {
  const first = startFakeLlm()
  const second = startFakeLlm()
  fakes.push(first, second)
  const config = Config.parse({
    agent: { model: { primary: 'one/model-a', fallbacks: ['two/model-b'] }, maxRetries: 0, ...agent },
    providers: {
      one: { type: 'openai-compatible', baseURL: `${primaryUrl ?? first.url}/v1`, apiKey: PRIMARY_KEY },
      two: { type: 'openai-compatible', baseURL: `${second.url}/v1` },
      ...providers,
    },
  })
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-fallback-')), 'xopcbot.db'))
  const store = new SessionStore(db)
  const made = makeApp()
  const redact = (text: string) => text.replaceAll(PRIMARY_KEY, '***')
  const agentOf = new Agent({ config, env: {}, store, log: made.logger.log, redact, ...(tools ? { tools } : {}) })
  const { app } = makeApp({ agent: agentOf, sessions: store, log: made.logger.log, modelName: 'one/model-a', redact })
  const status = async () => json(await app.handle(new Request('http://localhost/api/status')))
  return { first, second, app, store, agent: agentOf, status, logger: made.logger, logFile: made.logFile }
}

describe('a failing primary model falls through to the fallback', () => {
  const failures: [string, Record<string, unknown>, (c: ReturnType<typeof chain>) => void, string][] = [
    ['HTTP 429', {}, (c) => c.first.queue.push({ status: 429, body: '{"error":{"message":"slow down"}}' }), 'HTTP 429'],
    ['HTTP 500', {}, (c) => c.first.queue.push({ status: 500 }), 'HTTP 500'],
    ['a hang past agent.callTimeoutMs', { callTimeoutMs: 300, timeoutMs: 10_000 }, (c) => c.first.queue.push({ text: 'too late', delayMs: 3000 }), 'did not answer within 300 ms'],
    ['HTTP 401 (a refused key)', {}, (c) => c.first.queue.push({ status: 401, body: `{"error":{"message":"bad key ${PRIMARY_KEY}"}}` }), 'refused the API key (HTTP 401)'],
  ]
  for (const [name, agent, arrange, reason] of failures) {
    test(`${name}: the fallback answers, the reply names it, status shows the failure`, async () => {
      const c = chain({ agent })
      arrange(c)
      c.second.queue.push({ text: 'from the fallback' })
      const started = performance.now()
      const response = await postAgent(c.app, { message: 'hello', session: 's1' })
      expect(response.status).toBe(200)
      expect(await json(response)).toEqual({ status: 'ok', reply: 'from the fallback', session: 's1', model: 'two/model-b' })
      if (agent.callTimeoutMs) expect(performance.now() - started).toBeLessThan(2500)
      // The same messages went to both.
      expect(c.first.calls).toHaveLength(1)
      expect(c.second.calls).toHaveLength(1)
      expect(c.second.calls[0]!.body.messages).toEqual(c.first.calls[0]!.body.messages)
      expect(c.store.get('s1')!.messages.map((m) => [m.role, m.content, m.model])).toEqual([
        ['user', 'hello', undefined],
        ['assistant', 'from the fallback', 'two/model-b'],
      ])
      const status = await c.status()
      expect(status.model).toMatchObject({ name: 'one/model-a', configured: true })
      const [primary, fallback] = status.models
      expect(primary).toMatchObject({ name: 'one/model-a', role: 'primary', configured: true, last_success_at: null })
      expect(primary.recent_failures).toHaveLength(1)
      expect(primary.recent_failures[0].reason).toContain(reason)
      expect(Date.parse(primary.recent_failures[0].at)).toBeGreaterThan(Date.now() - 60_000)
      expect(fallback).toMatchObject({ name: 'two/model-b', role: 'fallback', configured: true, recent_failures: [] })
      expect(Date.parse(fallback.last_success_at)).toBeGreaterThan(Date.now() - 60_000)
      expect(JSON.stringify(status)).not.toContain(PRIMARY_KEY)
    })
  }

  test('a refused connection (a closed port): the fallback answers', async () => {
    const closed = await freePort()
    const c = chain({ primaryUrl: `http://127.0.0.1:${closed}` })
    const response = await postAgent(c.app, { message: 'anyone?' })
    expect(await json(response)).toMatchObject({ status: 'ok', reply: 'echo: anyone?', model: 'two/model-b' })
    const [primary] = (await c.status()).models
    expect(primary.recent_failures[0].reason).toContain(`cannot reach the model provider "one" at http://127.0.0.1:${closed}`)
  })

  test('a request error (HTTP 400) does not fall through: the next model would refuse it the same way', async () => {
    const c = chain()
    c.first.queue.push({ status: 400, body: '{"error":{"message":"context too long"}}' })
    const response = await postAgent(c.app, { message: 'hello' })
    expect(response.status).toBe(502)
    expect((await json(response)).error.message).toContain('HTTP 400')
    expect(c.second.calls).toHaveLength(0)
  })

  test('both fail: the turn fails with the last error, and nothing is stored', async () => {
    const c = chain()
    c.first.queue.push({ status: 503 })
    c.second.queue.push({ status: 500, body: 'fallback down too' })
    const response = await postAgent(c.app, { message: 'hello', session: 'both' })
    expect(response.status).toBe(502)
    expect((await json(response)).error.message).toContain('fallback down too')
    expect(c.store.get('both')).toBeNull()
  })

  test('a model that fails after its tools ran is not replaced: the tools would run again', async () => {
    const c = chain()
    c.first.queue.push({ toolCalls: [{ name: 'time', input: {} }] }, { status: 500 })
    const response = await postAgent(c.app, { message: 'what time is it?' })
    expect(response.status).toBe(502)
    expect(c.first.calls).toHaveLength(2)
    expect(c.second.calls).toHaveLength(0)
  })

  test('the primary answers when it can; each model client is made once', async () => {
    const c = chain()
    for (const message of ['one', 'two']) {
      const response = await postAgent(c.app, { message })
      expect(await json(response)).toMatchObject({ reply: `echo: ${message}`, model: 'one/model-a' })
    }
    expect(c.second.calls).toHaveLength(0)
    const slot = c.agent.models.slots[0]!
    expect(slot.languageModel()).toBe(slot.languageModel())
  })

  test('streamed: falls through before anything was streamed, never after', async () => {
    const c = chain()
    c.first.queue.push({ status: 500 })
    c.second.queue.push({ text: 'streamed by the fallback' })
    const events = await readEvents(await postAgent(c.app, { message: 'stream', stream: true }))
    expect(events.at(-1)).toEqual({ event: 'done', data: { reply: 'streamed by the fallback', session: 'default', model: 'two/model-b' } })

    // The primary breaks off after some text went out: the client already has part of its reply.
    c.first.queue.push({ text: 'one two three four', dropAfter: 2, chunkDelayMs: 50 })
    const broken = await readEvents(await postAgent(c.app, { message: 'again', stream: true }))
    expect(broken.some((e) => e.event === 'delta')).toBe(true)
    expect(broken.at(-1)!.event).toBe('error')
    expect(c.second.calls).toHaveLength(1)
  })

  test('a misconfigured fallback is skipped and shown in status', async () => {
    const c = chain({ agent: { model: { primary: 'one/model-a', fallbacks: ['mystery/x', 'openai/gpt-x', 'two/model-b'] } } })
    c.first.queue.push({ status: 500 })
    const response = await postAgent(c.app, { message: 'hi' })
    expect(await json(response)).toMatchObject({ reply: 'echo: hi', model: 'two/model-b' })
    const models = (await c.status()).models
    expect(models.map((m: any) => [m.name, m.role, m.configured])).toEqual([
      ['one/model-a', 'primary', true],
      ['mystery/x', 'fallback', false],
      ['openai/gpt-x', 'fallback', false],
      ['two/model-b', 'fallback', true],
    ])
    expect(models[1].problem).toContain('unknown provider "mystery"')
    expect(models[2].problem).toContain('no API key for provider "openai"')
  })
})

describe('agent.model in the config', () => {
  test('both forms are accepted; bad ones are refused with the field and the expected form', () => {
    expect(Config.parse({ agent: { model: 'openai/gpt-4o' } }).agent.model).toBe('openai/gpt-4o')
    expect(Config.parse({ agent: { model: { primary: 'a/b' } } }).agent.model).toEqual({ primary: 'a/b', fallbacks: [] })
    const issues = (value: unknown) => Config.safeParse({ agent: { model: value } }).error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
    expect(issues('gpt-4o')).toEqual(['agent.model: must look like "<provider>/<model id>", e.g. "openai/gpt-4o-mini"'])
    expect(issues({ primary: 'a/b', fallbacks: ['nope'] })).toEqual(['agent.model.fallbacks.0: must look like "<provider>/<model id>", e.g. "openai/gpt-4o-mini"'])
    expect(issues(42)[0]).toContain('agent.model: must be "<provider>/<model id>" or {"primary"')
    expect(issues({ fallbacks: ['a/b'] })[0]).toContain('agent.model: must be "<provider>/<model id>" or {"primary"')
  })
})

describe('a turn whose tool ran never starts over on another model', () => {
  test('streamed: the primary times out while its tool runs → the turn fails; the tool ran once', async () => {
    let runs = 0
    // A tool that takes longer than the model call may: the call is cut while the tool is still running.
    const slow: AgentTool = { name: 'time', description: 'slow', input: z.object({}), run: async () => (runs++, await Bun.sleep(800), { ok: true }) }
    const c = chain({ agent: { callTimeoutMs: 300, timeoutMs: 10_000, tools: ['time'] }, tools: [slow] })
    c.first.queue.push({ toolCalls: [{ name: 'time', input: {} }] })
    c.second.queue.push({ toolCalls: [{ name: 'time', input: {} }] }, { text: 'from the fallback' })
    const response = await postAgent(c.app, { message: 'hello', session: 's-tools', stream: true })
    const events = await readEvents(response)
    expect(events.at(-1)?.event).toBe('error')
    expect(runs).toBe(1)
    expect(c.second.calls.length).toBe(0)
  })
})

describe("a tool that ignores the turn's time limit", () => {
  test('agent.timeoutMs ends the turn while the tool is still running: 504, nothing stored', async () => {
    let finished = false
    const stubborn: AgentTool = { name: 'time', description: 'ignores its abort signal', input: z.object({}), run: async () => (await Bun.sleep(3000), (finished = true), { ok: true }) }
    const c = chain({ agent: { model: 'one/model-a', timeoutMs: 500, tools: ['time'] }, tools: [stubborn] })
    c.first.queue.push({ toolCalls: [{ name: 'time', input: {} }] }, { text: 'never' })
    const response = await postAgent(c.app, { message: 'hello', session: 's-stubborn' })
    expect(response.status).toBe(504)
    expect((await json(response)).error.message).toContain('agent.timeoutMs (500 ms)')
    expect(finished).toBe(false)
    expect(c.store.get('s-stubborn')).toBeNull()
  })
})
