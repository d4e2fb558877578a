import { afterAll, describe, expect, test } from 'bun:test'
import { startFakeLlm } from './fakes/llm'
import { readEvents } from './helpers/agent'
import { homeWithConfig, startGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const fake = startFakeLlm()
afterAll(() => fake.stop())

function homeWithFakeModel() {
  return homeWithConfig({ agent: { model: 'fake/echo-1', maxRetries: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${fake.url}/v1` } } })
}

const post = (url: string, body: unknown) => postJson(`${url}/api/agent`, body)

describe('the agent in a running gateway', () => {
  test('JSON and SSE over real HTTP; the history survives a restart', async () => {
    const home = homeWithFakeModel()
    const first = await startGateway({ home })
    try {
      const reply = await post(first.url, { message: 'What is 2+2?' })
      expect(reply.status).toBe(200)
      expect(await reply.json()).toEqual({ status: 'ok', reply: 'echo: What is 2+2?', session: 'default', model: 'fake/echo-1' })
      const streamed = await post(first.url, { message: 'and streamed', stream: true })
      expect(streamed.headers.get('x-request-id')).toMatch(/[0-9a-f-]{36}/)
      const events = await readEvents(streamed)
      expect(events.at(-1)).toEqual({ event: 'done', data: { reply: 'echo: and streamed', session: 'default', model: 'fake/echo-1' } })
    } finally {
      expect(await first.stop()).toBe(0)
    }
    const second = await startGateway({ home })
    try {
      const session = await json(await fetch(`${second.url}/api/sessions/default`))
      expect(session.session.messages.map((m: any) => m.content)).toEqual(['What is 2+2?', 'echo: What is 2+2?', 'and streamed', 'echo: and streamed'])
    } finally {
      expect(await second.stop()).toBe(0)
    }
  })

  test('a graceful stop lets a streaming turn finish', async () => {
    const home = homeWithFakeModel()
    const gateway = await startGateway({ home })
    fake.queue.push({ text: 'a slow and steady answer', chunkDelayMs: 150 })
    const response = await post(gateway.url, { message: 'take your time', session: 'slow', stream: true })
    let signalled = false
    const events = await readEvents(response, (e) => {
      if (e.event === 'delta' && !signalled) {
        signalled = true
        gateway.proc.kill('SIGTERM')
      }
    })
    expect(signalled).toBe(true)
    expect(events.at(-1)).toEqual({ event: 'done', data: { reply: 'a slow and steady answer', session: 'slow', model: 'fake/echo-1' } })
    expect(await gateway.proc.exited).toBe(0)
    await waitFor(() => gateway.output().includes('gateway stopped'), { what: 'the stop' })
  })
})
