import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sign } from '../src/channels/webhook'
import { loadConfig } from '../src/config/load'
import { ConfigError } from '../src/errors'
import { startFakeLlm, type FakeLlm, type RecordedCall } from './fakes/llm'
import { startFakeMcpHttp, type FakeMcpHttp } from './fakes/mcp-http'
import { stdioServer } from './fakes/mcp-tools'
import { startWebhookReceiver, type FakeReceiver } from './fakes/webhook-receiver'
import { homeWithConfig, startGateway, type RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const PROVIDER_KEY = 'sk-provider-key-in-tool-args-0815'
const HOOK_SECRET = 'a-webhook-secret-of-some-length'
const BUILT_IN = ['cron', 'send_message', 'time', 'web_fetch']
const FILES = ['files__echo', 'files__fail', 'files__pid']

const llmConfig = (fake: FakeLlm) => ({ agent: { model: 'fake/echo-1', maxRetries: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${fake.url}/v1`, apiKey: PROVIDER_KEY } } })

/** The tool names the model was offered in a call, sorted. */
const offered = (call: RecordedCall | undefined): string[] => (call?.body.tools ?? []).map((t: any) => t.function.name).sort()

/** The model call whose last user message is `text` (each test uses its own text). */
const callFor = (fake: FakeLlm, text: string) => waitFor(() => fake.calls.find((c) => c.lastUser === text), { what: `the model call for "${text}"` })

async function agentTurn(gateway: RunningGateway, message: string, session = `s-${crypto.randomUUID()}`) {
  const response = await postJson(`${gateway.url}/api/agent`, { message, session })
  return { status: response.status, body: await json(response), session }
}

async function mcpRunning(gateway: RunningGateway, servers: string[]) {
  await waitFor(async () => {
    const { mcp } = await json(await fetch(`${gateway.url}/api/status`))
    return servers.every((name) => mcp[name]?.state === 'running')
  }, { what: 'the MCP servers to be running', timeoutMs: 20_000 })
}

/** The JSON lines of the gateway's log file. */
function logLines(gateway: RunningGateway): Record<string, any>[] {
  let text = ''
  try {
    text = readFileSync(join(gateway.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')
  } catch {}
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
}

/** A webhook event to `channel`, signed as its sender would. */
async function webhookEvent(gateway: RunningGateway, channel: string, content: string) {
  const raw = JSON.stringify({ event: 'message', data: { chat_id: 'room-1', content } })
  const timestamp = Math.floor(Date.now() / 1000)
  const response = await postJson(`${gateway.url}/api/webhook/${channel}`, raw, { 'x-xopcbot-timestamp': String(timestamp), 'x-xopcbot-signature': sign(HOOK_SECRET, timestamp, raw) })
  expect(response.status).toBe(200)
}

describe('default agent.tools', () => {
  let fake: FakeLlm
  let http: FakeMcpHttp
  let gateway: RunningGateway

  beforeAll(async () => {
    fake = startFakeLlm()
    http = startFakeMcpHttp('web')
    const home = homeWithConfig({ ...llmConfig(fake), mcp: { servers: { files: stdioServer('files', { tools: ['echo', 'fail', 'pid'] }), web: { url: http.url, tools: ['echo'] } } } })
    gateway = await startGateway({ home })
    await mcpRunning(gateway, ['files', 'web'])
  }, 40_000)

  afterAll(async () => {
    if (gateway.proc.exitCode === null) await gateway.stop('SIGKILL')
    fake.stop()
    http.stop()
  })

  test('every built-in tool and every MCP tool is offered', async () => {
    expect((await agentTurn(gateway, 'default tools?')).status).toBe(200)
    expect(offered(await callFor(fake, 'default tools?'))).toEqual([...BUILT_IN, ...FILES, 'web__echo'].sort())
  })
})

describe('agent.tools naming built-in tools only', () => {
  let fake: FakeLlm
  let gateway: RunningGateway

  beforeAll(async () => {
    fake = startFakeLlm()
    const home = homeWithConfig({ ...llmConfig(fake), agent: { ...llmConfig(fake).agent, tools: ['time', 'cron'] }, mcp: { servers: { files: stdioServer('files', { tools: ['echo', 'fail', 'pid'] }) } } })
    gateway = await startGateway({ home })
    await mcpRunning(gateway, ['files'])
  }, 40_000)

  afterAll(async () => {
    if (gateway.proc.exitCode === null) await gateway.stop('SIGKILL')
    fake.stop()
  })

  test('restricts the built-in tools; an MCP server added later is offered without editing agent.tools', async () => {
    expect((await agentTurn(gateway, 'built-ins only?')).status).toBe(200)
    expect(offered(await callFor(fake, 'built-ins only?'))).toEqual(['cron', 'time', ...FILES].sort())
  })
})

describe('agent.tools with MCP entries, channels with their own lists', () => {
  let fake: FakeLlm
  let http: FakeMcpHttp
  let receiver: FakeReceiver
  let gateway: RunningGateway

  beforeAll(async () => {
    fake = startFakeLlm()
    http = startFakeMcpHttp('web')
    receiver = startWebhookReceiver(HOOK_SECRET)
    const home = homeWithConfig({
      ...llmConfig(fake),
      agent: { ...llmConfig(fake).agent, tools: ['time', 'send_message', 'files__*', 'web__echo'] },
      logging: { level: 'info' },
      channels: {
        public: { type: 'webhook', url: receiver.url, secret: HOOK_SECRET, tools: ['time', 'files__echo', 'web_fetch'] },
        inner: { type: 'webhook', url: receiver.url, secret: HOOK_SECRET },
      },
      mcp: { servers: { files: stdioServer('files', { tools: ['echo', 'fail', 'pid'] }), web: { url: http.url, tools: ['echo', 'secret'] } } },
    })
    gateway = await startGateway({ home })
    await mcpRunning(gateway, ['files', 'web'])
  }, 40_000)

  afterAll(async () => {
    if (gateway.proc.exitCode === null) await gateway.stop('SIGKILL')
    fake.stop()
    http.stop()
    receiver.stop()
  })

  test('"<server>__*" offers all of that server\'s tools; an exact name only that one; unlisted built-ins are not offered', async () => {
    expect((await agentTurn(gateway, 'api turn')).status).toBe(200)
    expect(offered(await callFor(fake, 'api turn'))).toEqual(['send_message', 'time', ...FILES, 'web__echo'].sort())
  })

  test("a channel's turns get only the tools in both lists; a channel without a list gets agent.tools", async () => {
    await webhookEvent(gateway, 'public', 'from the public channel')
    // web_fetch is in the channel's list but not in agent.tools: not offered.
    expect(offered(await callFor(fake, 'from the public channel'))).toEqual(['files__echo', 'time'])
    await webhookEvent(gateway, 'inner', 'from the inner channel')
    expect(offered(await callFor(fake, 'from the inner channel'))).toEqual(['send_message', 'time', ...FILES, 'web__echo'].sort())
    // Cached per channel, not stuck on the first: the public channel still gets its own.
    await webhookEvent(gateway, 'public', 'from the public channel again')
    expect(offered(await callFor(fake, 'from the public channel again'))).toEqual(['files__echo', 'time'])
  })

  test('each tool call is one info line with tool, session, duration and outcome, never the arguments', async () => {
    const secretArg = 'argument-that-must-not-be-logged-4711'
    fake.queue.push({ toolCalls: [{ name: 'files__echo', input: { text: secretArg } }] }, { text: 'echoed' })
    const ok = await agentTurn(gateway, 'log an ok call', 'log-ok')
    expect(ok.status).toBe(200)
    fake.queue.push({ toolCalls: [{ name: 'files__fail', input: {} }] }, { text: 'it failed' })
    expect((await agentTurn(gateway, 'log a failed call', 'log-fail')).status).toBe(200)
    fake.queue.push({ toolCalls: [{ name: 'time', input: { timezone: 'Not/AZone' } }] }, { text: 'no such zone' })
    expect((await agentTurn(gateway, 'log a built-in call', 'log-time')).status).toBe(200)

    const lines = await waitFor(() => {
      const calls = logLines(gateway).filter((line) => line.msg === 'tool call')
      return calls.length >= 3 ? calls : null
    }, { what: 'three tool call log lines' })
    expect(lines).toHaveLength(3)
    const bySession = Object.fromEntries(lines.map((line) => [line.session, line]))
    expect(bySession['log-ok']).toMatchObject({ level: 'info', tag: 'agent', tool: 'files__echo', outcome: 'ok' })
    expect(bySession['log-fail']).toMatchObject({ level: 'info', tag: 'agent', tool: 'files__fail', outcome: 'error' })
    expect(bySession['log-time']).toMatchObject({ level: 'info', tag: 'agent', tool: 'time', outcome: 'error' })
    for (const line of lines) expect(typeof line.ms).toBe('number')
    const log = readFileSync(join(gateway.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')
    expect(log).not.toContain(secretArg)
    expect(log).not.toContain('Not/AZone')
    expect(log).not.toContain('echo from files')
  })

  test('a streamed turn logs its tool calls with its session too', async () => {
    fake.queue.push({ toolCalls: [{ name: 'files__pid', input: {} }] }, { text: 'streamed' })
    const response = await postJson(`${gateway.url}/api/agent`, { message: 'stream a tool call', session: 'log-stream', stream: true })
    expect(await response.text()).toContain('streamed')
    const line = await waitFor(() => logLines(gateway).find((l) => l.msg === 'tool call' && l.tool === 'files__pid'), { what: 'the tool call line' })
    expect(line).toMatchObject({ session: 'log-stream', outcome: 'ok' })
  })

  test('GET /api/sessions/:key shows tool_calls and tool_results beside the display text', async () => {
    fake.queue.push({ toolCalls: [{ name: 'files__echo', input: { text: 'stored call' } }] }, { text: 'done' })
    expect((await agentTurn(gateway, 'store the tool call', 'stored-tools')).status).toBe(200)
    const { session } = await json(await fetch(`${gateway.url}/api/sessions/stored-tools`))
    const [user, call, result, reply] = session.messages
    expect(user).toMatchObject({ role: 'user', content: 'store the tool call' })
    expect(user.tool_calls).toBeUndefined()
    expect(call.role).toBe('assistant')
    expect(call.content).toStartWith('[tool call files__echo')
    expect(call.tool_calls).toEqual([{ id: expect.any(String), name: 'files__echo', input: { text: 'stored call' } }])
    expect(result.role).toBe('tool')
    expect(result.content).toStartWith('[tool result files__echo')
    expect(result.tool_results).toHaveLength(1)
    expect(result.tool_results[0]).toMatchObject({ id: call.tool_calls[0].id, name: 'files__echo' })
    expect(JSON.stringify(result.tool_results[0].output)).toContain('echo from files: stored call')
    expect(result.tool_results[0].error).toBeUndefined()
    expect(reply).toMatchObject({ role: 'assistant', content: 'done' })
    expect(reply.tool_calls).toBeUndefined()
    expect(reply.tool_results).toBeUndefined()
  })
})

describe('tool call arguments at debug level', () => {
  let fake: FakeLlm
  let gateway: RunningGateway

  beforeAll(async () => {
    fake = startFakeLlm()
    gateway = await startGateway({ home: homeWithConfig({ ...llmConfig(fake), agent: { ...llmConfig(fake).agent, tools: ['time'] }, logging: { level: 'debug' } }) })
  }, 40_000)

  afterAll(async () => {
    if (gateway.proc.exitCode === null) await gateway.stop('SIGKILL')
    fake.stop()
  })

  test('are logged, with configured secrets redacted', async () => {
    fake.queue.push({ toolCalls: [{ name: 'time', input: { timezone: `Europe/Berlin ${PROVIDER_KEY}` } }] }, { text: 'ok' })
    expect((await agentTurn(gateway, 'debug args', 'debug-args')).status).toBe(200)
    const line = await waitFor(() => logLines(gateway).find((l) => l.msg === 'tool call arguments'), { what: 'the debug line' })
    expect(line).toMatchObject({ level: 'debug', tool: 'time', session: 'debug-args' })
    expect(line.input).toContain('Europe/Berlin')
    expect(readFileSync(join(gateway.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')).not.toContain(PROVIDER_KEY)
  })
})

describe('an MCP entry naming no configured server', () => {
  test('is reported at start with the field, and the gateway runs', async () => {
    const fake = startFakeLlm()
    const gateway = await startGateway({ home: homeWithConfig({ ...llmConfig(fake), agent: { ...llmConfig(fake).agent, tools: ['time', 'ghost__*'] } }) })
    try {
      const line = await waitFor(() => logLines(gateway).find((l) => l.level === 'warn' && String(l.msg).includes('"ghost__*"')), { what: 'the warning' })
      expect(line.msg).toContain('agent.tools')
      expect(line.msg).toContain('mcp.servers')
      expect((await agentTurn(gateway, 'still works')).status).toBe(200)
      expect(offered(await callFor(fake, 'still works'))).toEqual(['time'])
    } finally {
      await gateway.stop('SIGKILL')
      fake.stop()
    }
  })
})

describe('config errors', () => {
  const configError = (config: unknown): string => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-tools-')), 'config.json')
    writeFileSync(path, JSON.stringify(config))
    try {
      loadConfig(path, {})
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      return String((error as Error).message) + '\n' + ((error as ConfigError & { problems?: string[] }).problems ?? []).join('\n')
    }
    throw new Error('expected a ConfigError')
  }

  test('an unknown built-in name names the field and lists the valid tools', () => {
    const message = configError({ agent: { tools: ['time', 'shell'] } })
    expect(message).toContain('agent.tools')
    expect(message).toContain('"shell"')
    expect(message).toContain('time, cron, send_message, web_fetch')
  })

  test('a malformed MCP entry names the field and the syntax', () => {
    for (const entry of ['files__', '__echo', 'files__ec*o', 'my server__*']) {
      const message = configError({ agent: { tools: [entry] } })
      expect(message).toContain('agent.tools')
      expect(message).toContain('"<server>__<tool>" or "<server>__*"')
    }
  })

  test('channel lists are checked the same way, for webhook and telegram channels', () => {
    const webhook = configError({ channels: { hook: { type: 'webhook', url: 'http://127.0.0.1:9/x', secret: HOOK_SECRET, tools: ['nope'] } } })
    expect(webhook).toContain('channels.hook.tools')
    expect(webhook).toContain('"nope"')
    const telegram = configError({ channels: { telegram: { tools: ['files__*', 'sendmessage'] } } })
    expect(telegram).toContain('channels.telegram.tools')
    expect(telegram).toContain('"sendmessage"')
  })

  test('valid entries are accepted', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xopcbot-tools-')), 'config.json')
    writeFileSync(path, JSON.stringify({ agent: { tools: ['time', 'files__*', 'my-srv_2__read_file'] }, channels: { telegram: { tools: ['time'] } } }))
    const { config } = loadConfig(path, {})
    expect(config.agent.tools).toEqual(['time', 'files__*', 'my-srv_2__read_file'])
    expect(config.channels.telegram!.tools).toEqual(['time'])
  })
})

describe('a channel with its own tool list cannot reach the other tools through a scheduled job', () => {
  test('from it the cron tool creates direct reminders only; an agent job is refused with the reason', async () => {
    const fake = startFakeLlm()
    const receiver = startWebhookReceiver(HOOK_SECRET)
    const home = homeWithConfig({
      ...llmConfig(fake),
      channels: { public: { type: 'webhook', url: receiver.url, secret: HOOK_SECRET, tools: ['cron'] } },
    })
    const gateway = await startGateway({ home })
    try {
      // The model, prompted through the public channel, tries to schedule a job that would run with every tool.
      fake.queue.push(
        { toolCalls: [{ name: 'cron', input: { action: 'create', schedule: '@daily', message: 'use all your tools', mode: 'agent', channel: 'public', chat_id: 'room-1' } }] },
        { text: 'tried an agent job' },
        { toolCalls: [{ name: 'cron', input: { action: 'create', schedule: '@daily', message: 'drink water', mode: 'direct', channel: 'public', chat_id: 'room-1' } }] },
        { text: 'made a reminder' },
      )
      await webhookEvent(gateway, 'public', 'schedule something')
      await waitFor(() => fake.calls.length >= 2, { what: 'the first turn' })
      const refusal = fake.calls[1]!.body.messages.at(-1)
      expect(refusal.role).toBe('tool')
      expect(refusal.content).toContain('only direct reminders (mode \\"direct\\") can be created from here')
      await webhookEvent(gateway, 'public', 'a reminder then')
      await waitFor(() => fake.calls.length >= 4, { what: 'the second turn' })
      const jobs = (await json(await fetch(`${gateway.url}/api/cron`))).jobs as { mode: string; message: string }[]
      expect(jobs.map((job) => [job.mode, job.message])).toEqual([['direct', 'drink water']])
      // The same tool from a turn without a channel (the API) still creates agent jobs.
      fake.queue.push({ toolCalls: [{ name: 'cron', input: { action: 'create', schedule: '@daily', message: 'summarise my day' } }] }, { text: 'scheduled' })
      expect((await agentTurn(gateway, 'schedule from the API')).status).toBe(200)
      const after = (await json(await fetch(`${gateway.url}/api/cron`))).jobs as { mode: string }[]
      expect(after.map((job) => job.mode).sort()).toEqual(['agent', 'direct'])
    } finally {
      await gateway.stop('SIGKILL')
      fake.stop()
      receiver.stop()
    }
  })
})
