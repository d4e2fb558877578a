import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { Config } from '../src/config/schema'
import { Gateway } from '../src/lifecycle/gateway'
import { RotatingFile } from '../src/logging/rotating-file'
import { isInternal, openApiPath } from '../src/server/openapi'
import { isUiPath } from '../src/server/ui-paths'
import { makeWorld, type World } from './helpers/channels'
import { freePort, tempHome, writeConfig, type RunningGateway } from './helpers/gateway'
import { json } from './helpers/http'

const TOKEN = 'surface-token-0123456789abcdef'
const ORIGIN = 'https://app.example.com'
let world: World
let gateway: RunningGateway

beforeAll(async () => {
  world = await makeWorld()
  // The world's config, plus a token and a CORS origin; a log with rotated files written before the start.
  const config = { ...world.config, gateway: { ...world.config.gateway, auth: { token: TOKEN }, cors: { origins: [ORIGIN] } } }
  writeConfig(world.home, config)
  mkdirSync(join(world.home, '.xopcbot', 'logs'), { recursive: true })
  const file = new RotatingFile(join(world.home, '.xopcbot', 'logs', 'gateway.log'), { maxBytes: 3000, maxFiles: 5 })
  const levels = ['debug', 'info', 'warn', 'error']
  for (let n = 0; n < 120; n++) file.write(JSON.stringify({ ts: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(), level: levels[n % 4], tag: 'old', msg: `old line ${n}${n % 10 === 0 ? ' needle' : ''}`, n }))
  file.close()
  gateway = await world.start()
})
afterAll(async () => {
  await gateway.stop()
  world.stop()
})

const auth = { authorization: `Bearer ${TOKEN}` }
const getJson = async (path: string, headers: Record<string, string> = auth) => {
  const response = await fetch(`${gateway.url}${path}`, { headers })
  return { status: response.status, body: await json(response) }
}

describe('GET /api/logs', () => {
  test('always needs the token, even from loopback', async () => {
    expect((await getJson('/api/logs', {})).status).toBe(401)
  })

  test('lines, level, since and q work across rotated files; newest last', async () => {
    const last = (await getJson('/api/logs?lines=5')).body.logs
    expect(last).toHaveLength(5)
    expect(last.at(-1).tag).not.toBe('old') // the gateway's own lines come last
    const old = (await getJson('/api/logs?lines=40&q=old%20line')).body.logs
    expect(old.map((l: any) => l.n)).toEqual(Array.from({ length: 40 }, (_, i) => 80 + i))
    const warn = (await getJson('/api/logs?lines=10&level=warn&q=old')).body.logs
    expect(warn.every((l: any) => l.level === 'warn' || l.level === 'error')).toBe(true)
    expect(warn.map((l: any) => l.n)).toEqual([102, 103, 106, 107, 110, 111, 114, 115, 118, 119])
    const since = (await getJson(`/api/logs?lines=5000&q=old&since=${encodeURIComponent('2026-01-01T01:50:00Z')}`)).body.logs
    expect(since.map((l: any) => l.n)).toEqual(Array.from({ length: 10 }, (_, i) => 110 + i))
    const needles = (await getJson('/api/logs?lines=5000&q=NEEDLE')).body.logs
    expect(needles.map((l: any) => l.n)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110])
  })

  test('bad parameters → 400 naming them', async () => {
    for (const [query, message] of [
      ['lines=0', 'query.lines: must be at least 1'],
      ['lines=5001', 'query.lines: must be at most 5000'],
      ['lines=abc', 'query.lines: must be a whole number'],
      ['level=loud', 'query.level: must be one of'],
      ['since=yesterday', 'query.since: must be an ISO-8601 date-time'],
    ]) {
      const { status, body } = await getJson(`/api/logs?${query}`)
      expect(status).toBe(400)
      expect(body.error.message).toContain(message)
    }
  })
})

test('GET /api/status reports the process, model, channels, queue and cron', async () => {
  await fetch(`${gateway.url}/api/cron/create`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ schedule: '@daily', message: 'digest' }) })
  const { body } = await getJson('/api/status')
  expect(body).toMatchObject({
    status: 'ok',
    pid: gateway.proc.pid,
    bind: { host: '127.0.0.1', port: gateway.port },
    model: { name: 'fake/echo', configured: true },
    channels: { telegram: { type: 'telegram', state: 'running' }, myapp: { type: 'webhook', state: 'running' }, off: { type: 'webhook', state: 'disabled' } },
    queue: { queued: 0, processing: 0, delivered: 0, failed: 0 },
    cron: { jobs: 1, enabled: 1 },
  })
  expect(Date.parse(body.cron.next_run)).toBeGreaterThan(Date.now())
  expect(body.config_path).toBe(join(world.home, '.xopcbot', 'config.json'))
})

test('CORS over real HTTP: the configured origin gets headers and a preflight answer, another gets none', async () => {
  const preflight = await fetch(`${gateway.url}/api/status`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
  expect(preflight.status).toBe(204)
  expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN)
  const allowed = await fetch(`${gateway.url}/api/status`, { headers: { ...auth, origin: ORIGIN } })
  expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN)
  const other = await fetch(`${gateway.url}/api/status`, { headers: { ...auth, origin: 'https://elsewhere.example' } })
  expect(other.headers.get('access-control-allow-origin')).toBeNull()
})

describe('OpenAI-compatible endpoint, with the official openai client', () => {
  const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: TOKEN, maxRetries: 0 })

  test('models, a reply and a stream; the user keeps a session', async () => {
    const models = await client().models.list()
    expect(models.data.map((m) => m.id)).toEqual(['xopcbot'])
    const completion = await client().chat.completions.create({ model: 'xopcbot', messages: [{ role: 'user', content: 'Hello from the SDK' }], user: 'sdk-user' })
    expect(completion.choices[0]!.message.content).toBe('echo: Hello from the SDK')
    expect(completion.choices[0]!.finish_reason).toBe('stop')
    const stream = await client().chat.completions.create({ model: 'xopcbot', messages: [{ role: 'user', content: 'stream this please' }], stream: true, user: 'sdk-user' })
    let text = ''
    let chunks = 0
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? ''
      chunks++
    }
    expect(text).toBe('echo: stream this please')
    expect(chunks).toBeGreaterThan(2)
    const session = (await getJson('/api/sessions/openai%3Asdk-user')).body.session
    expect(session.messages.map((m: any) => m.content)).toEqual(['Hello from the SDK', 'echo: Hello from the SDK', 'stream this please', 'echo: stream this please'])
  })

  test('a wrong key is refused; a request without a user message is a 400', async () => {
    const statusOf = (promise: PromiseLike<unknown>) =>
      Promise.resolve(promise).then(
        () => 'resolved',
        (error: { status?: number }) => error.status,
      )
    expect(await statusOf(new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'wrong-key-123', maxRetries: 0 }).models.list())).toBe(401)
    expect(await statusOf(client().chat.completions.create({ model: 'x', messages: [{ role: 'system', content: 'only a system prompt' }] }))).toBe(400)
  })
})

describe('GET /openapi.json', () => {
  test('is public, valid OpenAPI 3, and lists every route the app serves', async () => {
    const response = await fetch(`${gateway.url}/openapi.json`)
    expect(response.status).toBe(200)
    const document = await json(response)
    await SwaggerParser.validate(structuredClone(document))
    // The same app, built in this process, to compare its routes with the document.
    const home = tempHome()
    const port = await freePort()
    const config = Config.parse({ ...world.config, gateway: { host: '127.0.0.1', port } })
    mkdirSync(join(home, 'x'), { recursive: true })
    // With a config loader, like a gateway the CLI runs: POST /api/config/reload is served then.
    const local = new Gateway({ config, configPath: join(home, 'x', 'config.json'), console: false, loadConfig: () => config })
    local.start()
    try {
      const served = local.app!.routes.filter((r) => !isInternal(r.path) && !isUiPath(r.path)).map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`)
      const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods as object).map((m) => `${m} ${path}`))
      expect(served.length).toBeGreaterThan(18)
      expect(documented.sort()).toEqual([...new Set(served)].sort())
      expect(document.paths['/api/agent'].post.requestBody.content['application/json'].schema.required).toContain('message')
      expect(document.paths['/api/sessions/{key}'].get.parameters[0]).toMatchObject({ name: 'key', in: 'path' })
    } finally {
      await local.stop('test')
    }
  })
})
