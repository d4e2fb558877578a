import { afterAll, beforeAll, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Server } from 'bun'
import { freePort, homeWithConfig, startGateway, type RunningGateway } from '../helpers/gateway'
import { postJson } from '../helpers/http'
import { waitFor } from '../helpers/wait'

/**
 * A provider that echoes the API key it was sent in its error replies (some do, in "Incorrect API key
 * provided: sk-…" messages). The key must not reach an API response, a stored record, the database file or
 * the log — whether it came from the config file or from the environment variable a preset reads.
 */
const CONFIG_KEY = 'sk-config-key-0123456789abcdef'
const ENV_KEY = 'sk-env-key-fedcba9876543210'

let provider: Server<unknown>
let gateway: RunningGateway
let home: string

beforeAll(async () => {
  provider = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(request) {
      const key = (request.headers.get('authorization') ?? '').replace(/^Bearer /, '')
      return Response.json({ error: { message: `Incorrect API key provided: ${key}. You can find your API key at …`, type: 'invalid_request_error' } }, { status: 500 })
    },
  })
  const port = await freePort()
  home = homeWithConfig({
    gateway: { host: '127.0.0.1', port },
    agent: { model: 'echoing/some-model', maxRetries: 0 },
    providers: {
      echoing: { type: 'openai-compatible', baseURL: `http://127.0.0.1:${provider.port}/v1`, apiKey: '${ECHOING_KEY}' },
      // A preset whose key is only in the environment.
      openai: { baseURL: `http://127.0.0.1:${provider.port}/v1` },
    },
    channels: { hook: { type: 'webhook', url: `http://127.0.0.1:${provider.port}/hook`, secret: 'a-webhook-secret-of-some-length' } },
  })
  gateway = await startGateway({ home, port, env: { ECHOING_KEY: CONFIG_KEY, OPENAI_API_KEY: ENV_KEY } })
})

afterAll(async () => {
  if (gateway.proc.exitCode === null) await gateway.stop()
  provider.stop(true)
})

const post = (path: string, body: unknown) => postJson(`${gateway.url}${path}`, body)

test('a provider that echoes its key: the key reaches no response, no stored record, no file', async () => {
  // /api/agent, JSON
  const agent = await post('/api/agent', { message: 'hi' })
  expect(agent.status).toBe(502)
  const agentText = await agent.text()
  expect(agentText).toContain('Incorrect API key provided: [REDACTED]')
  expect(agentText).not.toContain(CONFIG_KEY)

  // /api/agent, streamed: the error event
  const streamed = await (await post('/api/agent', { message: 'hi', stream: true })).text()
  expect(streamed).toContain('event: error')
  expect(streamed).toContain('[REDACTED]')
  expect(streamed).not.toContain(CONFIG_KEY)

  // /v1/chat/completions
  const openai = await (await post('/v1/chat/completions', { model: 'xopcbot', messages: [{ role: 'user', content: 'hi' }] })).text()
  expect(openai).toContain('[REDACTED]')
  expect(openai).not.toContain(CONFIG_KEY)

  // a queued message: its stored error
  const accepted = (await (await post('/api/message', { channel: 'hook', chat_id: 'c1', content: 'hi' })).json()) as { message_id: string }
  const failed = await waitFor(
    async () => {
      const { message } = (await (await fetch(`${gateway.url}/api/message/${accepted.message_id}`)).json()) as { message: { state: string; error?: string } }
      return message.state === 'failed' ? message : null
    },
    { what: 'the message to fail' },
  )
  expect(failed.error).toContain('[REDACTED]')
  expect(failed.error).not.toContain(CONFIG_KEY)

  // a cron run: its stored error
  const created = (await (await post('/api/cron/create', { name: 'k', schedule: '0 0 1 1 *', mode: 'agent', message: 'hi' })).json()) as { job: { id: string } }
  await post('/api/cron/trigger', { job_id: created.job.id })
  const run = await waitFor(
    async () => {
      const { runs } = (await (await fetch(`${gateway.url}/api/cron/${created.job.id}/runs`)).json()) as { runs: { status: string; error?: string }[] }
      return runs[0]?.status === 'failed' ? runs[0] : null
    },
    { what: 'the cron run to fail' },
  )
  expect(run.error).toContain('[REDACTED]')
  expect(run.error).not.toContain(CONFIG_KEY)
})

test('a preset whose key comes from the environment is redacted the same way', async () => {
  // A second gateway whose model is a preset that reads its key from the environment.
  const port = await freePort()
  const home2 = homeWithConfig({ gateway: { host: '127.0.0.1', port }, agent: { model: 'openai/gpt-4o-mini', maxRetries: 0 }, providers: { openai: { baseURL: `http://127.0.0.1:${provider.port}/v1` } } })
  const second = await startGateway({ home: home2, port, env: { OPENAI_API_KEY: ENV_KEY } })
  try {
    const response = await postJson(`${second.url}/api/agent`, { message: 'hi' })
    expect(response.status).toBe(502)
    const text = await response.text()
    expect(text).toContain('[REDACTED]')
    expect(text).not.toContain(ENV_KEY)
  } finally {
    expect(await second.stop()).toBe(0)
  }
  const files = filesUnder(join(home2, '.xopcbot'))
  for (const file of files) expect(readFileSync(file).includes(ENV_KEY), file).toBe(false)
})

test('after all that, the key is in no file of the data directory: database, WAL, logs', async () => {
  expect(await gateway.stop()).toBe(0)
  const files = filesUnder(join(home, '.xopcbot')).filter((f) => !f.endsWith('config.json'))
  expect(files.some((f) => f.endsWith('xopcbot.db'))).toBe(true)
  expect(files.some((f) => f.endsWith('gateway.log'))).toBe(true)
  for (const file of files) {
    const bytes = readFileSync(file)
    expect(bytes.includes(CONFIG_KEY), file).toBe(false)
    expect(bytes.includes(ENV_KEY), file).toBe(false)
  }
  // The failures themselves were recorded (so the absence above is not an empty database).
  expect(readFileSync(join(home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')).toContain('[REDACTED]')
  expect(gateway.output()).not.toContain(CONFIG_KEY)
})

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
}
