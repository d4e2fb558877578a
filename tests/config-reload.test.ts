import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { configInForce, diffConfig } from '../src/config/reload'
import { Config } from '../src/config/schema'
import { startFakeLlm } from './fakes/llm'
import { stdioServer } from './fakes/mcp-tools'
import { startFakeTelegram } from './fakes/telegram'
import { childEnv, configPathOf, ENTRY, freePort, tempHome } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

describe('what a reload applies (diffConfig)', () => {
  const base = Config.parse({ channels: { hooks: { type: 'webhook', url: 'https://example.com/in', secret: 'a-secret-of-16-chars' } } })

  test('nothing differs: unchanged', () => {
    expect(diffConfig(base, Config.parse(structuredClone(base)))).toMatchObject({ applied: [], restart_required: [], unchanged: true })
  })

  test('live keys are applied, start-only keys need a restart and keep their running value', () => {
    const next = Config.parse({
      gateway: { port: 19999, host: '127.0.0.1', auth: { token: 'a-new-token-1234' } },
      dataDir: '/elsewhere',
      logging: { level: 'debug', maxFiles: 2 },
      agent: { model: 'anthropic/claude-x' },
      cron: { timezone: 'Europe/Berlin' },
      channels: { telegram: { enabled: true, token: '1:abc' } },
      mcp: { servers: { files: { command: 'files-server' } } },
    })
    const diff = diffConfig(base, next)
    expect(diff.applied).toEqual(['logging.level', 'gateway.auth.token', 'agent', 'cron.timezone', 'channels.hooks', 'channels.telegram', 'mcp.servers.files'])
    expect(diff.restart_required).toEqual(['gateway.host', 'gateway.port', 'dataDir', 'logging.maxFiles'])
    expect(diff).toMatchObject({ unchanged: false, channels: ['hooks', 'telegram'], mcpServers: ['files'], agent: true })
    const inForce = configInForce(base, next)
    expect(inForce.gateway).toMatchObject({ port: base.gateway.port, host: base.gateway.host, auth: { token: 'a-new-token-1234' } })
    expect(inForce.dataDir).toBeNull()
    expect(inForce.logging).toEqual({ ...next.logging, maxFiles: base.logging.maxFiles })
    expect(inForce.agent.model).toBe('anthropic/claude-x')
  })

  test('a key of no live part (one added later) needs a restart', () => {
    const next = { ...base, future: { keep: 3 } } as Config
    expect(diffConfig(base, next)).toMatchObject({ applied: [], restart_required: ['future'], unchanged: false })
    expect('future' in configInForce(base, next)).toBe(false)
  })

  test('a key added later to a partly live area (gateway, logging, cron) needs a restart too', () => {
    const next = { ...base, gateway: { ...base.gateway, future: 1 }, cron: { ...base.cron, later: true } } as Config
    expect(diffConfig(base, next)).toMatchObject({ applied: [], restart_required: ['gateway.future', 'cron.later'], unchanged: false })
    const inForce = configInForce(base, next) as unknown as { gateway: Record<string, unknown>; cron: Record<string, unknown> }
    expect('future' in inForce.gateway).toBe(false)
    expect('later' in inForce.cron).toBe(false)
  })
})

interface Running {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  url: string
  output: () => string
  stop: () => Promise<number>
}

/** `xopcbot gateway` without --port/--host flags, so that the file's gateway.port is the one in force. */
async function startFromFile(home: string, port: number): Promise<Running> {
  const proc = Bun.spawn([process.execPath, ENTRY, 'gateway'], { env: childEnv(home, { XOPCBOT_TEST_CHANNEL_BACKOFF_MS: '50,200' }), stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
  let out = ''
  const decoder = new TextDecoder()
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true })
  }
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)])
  const url = `http://127.0.0.1:${port}`
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}: ${out}`)
      return (await fetch(`${url}/health`)).status === 200
    },
    { what: 'gateway /health', timeoutMs: 15_000 },
  ).catch((error) => {
    proc.kill('SIGKILL')
    throw error
  })
  return {
    proc,
    url,
    output: () => out,
    stop: async () => {
      proc.kill('SIGTERM')
      const code = await proc.exited
      await pumped
      return code
    },
  }
}

const status = async (url: string) => json(await fetch(`${url}/api/status`))
const reload = async (url: string) => {
  const response = await fetch(`${url}/api/config/reload`, { method: 'POST' })
  return { status: response.status, body: await json(response) }
}

describe('live reload in a running gateway', () => {
  const oldLlm = startFakeLlm()
  const newLlm = startFakeLlm()
  const telegram = startFakeTelegram()
  const home = tempHome()
  const path = configPathOf(home)
  let port = 0
  let gateway: Running
  /** the config file as the test last wrote it */
  let config: any

  /** Writes the config as an editor does: a new file renamed over the old one. */
  const write = (next: unknown) => {
    config = next
    mkdirSync(join(home, '.xopcbot'), { recursive: true })
    writeFileSync(`${path}.tmp`, JSON.stringify(next))
    renameSync(`${path}.tmp`, path)
  }

  beforeAll(async () => {
    port = await freePort()
    write({
      gateway: { host: '127.0.0.1', port },
      agent: { model: 'fake/old-model', maxRetries: 0 },
      providers: { fake: { type: 'openai-compatible', baseURL: `${oldLlm.url}/v1` } },
    })
    gateway = await startFromFile(home, port)
  })
  afterAll(async () => {
    expect(await gateway?.stop()).toBe(0)
    oldLlm.stop()
    newLlm.stop()
    telegram.stop()
  })

  test('a changed model and provider apply from the next turn; a turn under way finishes with the old ones', async () => {
    oldLlm.queue.push({ text: 'the old model took its time', delayMs: 1500 })
    const slow = postJson(`${gateway.url}/api/agent`, { message: 'slow one', session: 'slow' })
    await waitFor(() => oldLlm.calls.some((c) => c.lastUser === 'slow one'), { what: 'the slow turn to reach the old model' })

    write({ ...config, agent: { ...config.agent, model: 'fake/new-model' }, providers: { fake: { type: 'openai-compatible', baseURL: `${newLlm.url}/v1` } } })
    await waitFor(async () => (await status(gateway.url)).model.name === 'fake/new-model', { what: 'the reload of the file' })

    const next = await postJson(`${gateway.url}/api/agent`, { message: 'after the change', session: 'next' })
    expect(await json(next)).toMatchObject({ reply: 'echo: after the change', model: 'fake/new-model' })
    expect(newLlm.calls.map((c) => c.lastUser)).toEqual(['after the change'])
    expect(newLlm.calls[0]!.body.model).toBe('new-model')

    const old = await slow
    expect(old.status).toBe(200)
    expect(await json(old)).toMatchObject({ reply: 'the old model took its time', model: 'fake/old-model' })
    expect(oldLlm.calls.map((c) => c.lastUser)).toEqual(['slow one'])
    await waitFor(() => /config reloaded reason="file change" applied=\["agent","providers"\]/.test(gateway.output()), { what: 'the reload log line' })
  })

  test('the log level changes at once (debug lines appear)', async () => {
    await postJson(`${gateway.url}/api/agent`, { message: 'at info', session: 'levels' })
    expect(gateway.output()).not.toContain('DEBUG [agent] turn finished')
    write({ ...config, logging: { level: 'debug' } })
    await waitFor(() => gateway.output().includes('applied=["logging.level"]'), { what: 'the level reload' })
    await postJson(`${gateway.url}/api/agent`, { message: 'at debug', session: 'levels' })
    await waitFor(() => gateway.output().includes('DEBUG [agent] turn finished'), { what: 'a debug line of the agent' })
    write({ ...config, logging: { level: 'info' } })
    expect((await reload(gateway.url)).body.applied).toEqual(['logging.level'])
  })

  test('POST /api/config/reload: what was applied and what needs a restart; the port stays', async () => {
    expect(await reload(gateway.url)).toEqual({ status: 200, body: { status: 'ok', applied: [], restart_required: [], unchanged: true } })
    const otherPort = await freePort()
    write({ ...config, gateway: { ...config.gateway, port: otherPort, cors: { origins: ['https://app.example.com'] } } })
    const answer = await reload(gateway.url)
    expect(answer).toEqual({ status: 200, body: { status: 'ok', applied: ['gateway.cors.origins'], restart_required: ['gateway.port'], unchanged: false } })
    const preflight = await fetch(`${gateway.url}/api/status`, { headers: { origin: 'https://app.example.com' } })
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect((await status(gateway.url)).bind.port).toBe(port)
    expect(await fetch(`http://127.0.0.1:${otherPort}/health`).catch(() => null)).toBeNull()
    expect(gateway.output()).toMatch(/WARN {2}config reloaded; some changes take effect only after a restart reason="POST \/api\/config\/reload" applied=\["gateway.cors.origins"\] restartRequired=\["gateway.port"\]/)
    // Still in the file, still not applied: every reload says so.
    expect((await reload(gateway.url)).body).toMatchObject({ applied: [], restart_required: ['gateway.port'], unchanged: false })
    write({ ...config, gateway: { host: '127.0.0.1', port } })
    expect((await reload(gateway.url)).body).toMatchObject({ applied: ['gateway.cors.origins'], restart_required: [] })
  })

  test('an invalid file changes nothing: 422 naming the key, status "invalid" until a valid file is loaded', async () => {
    const valid = config
    const secretKey = 'sk-reload-test-secret-123456'
    write({ ...valid, agent: { ...valid.agent, model: 'fake/never-used', maxSteps: 0 }, providers: { fake: { ...valid.providers.fake, apiKey: secretKey } } })
    const answer = await reload(gateway.url)
    expect(answer.status).toBe(422)
    expect(answer.body.error.code).toBe('CONFIG_INVALID')
    expect(answer.body.error.message).toMatch(/^agent\.maxSteps: /)
    const invalid = (await status(gateway.url)).config
    const since = invalid.since
    expect(invalid).toMatchObject({ state: 'invalid', path, error: expect.stringMatching(/^agent\.maxSteps: /), since: expect.any(String), loaded_at: expect.any(String) })
    // The old config still serves.
    expect(await json(await postJson(`${gateway.url}/api/agent`, { message: 'still here', session: 'invalid' }))).toMatchObject({ model: 'fake/new-model' })
    await waitFor(() => /ERROR config not reloaded: the file is invalid.*error="agent\.maxSteps: /.test(gateway.output()), { what: 'the error line' })
    expect(gateway.output()).not.toContain(secretKey)
    // Still invalid: the first time it was found so is kept.
    expect((await reload(gateway.url)).status).toBe(422)
    expect((await status(gateway.url)).config.since).toBe(since)

    write(valid)
    expect(await reload(gateway.url)).toMatchObject({ status: 200, body: { unchanged: true } })
    const ok = (await status(gateway.url)).config
    expect(ok).toEqual({ state: 'ok', path, loaded_at: expect.any(String) })
    expect(Date.parse(ok.loaded_at)).toBeGreaterThan(Date.parse(since))
  })

  test('a key pasted without quotes is not quoted back in the 422, /api/status or the log', async () => {
    const valid = config
    const pasted = 'sk-unquoted-paste-98765432'
    writeFileSync(`${path}.tmp`, JSON.stringify(valid).replace(/^\{/, `{"providers": {"fake": {"apiKey": ${pasted}}}, `))
    renameSync(`${path}.tmp`, path)
    const answer = await reload(gateway.url)
    expect(answer.status).toBe(422)
    expect(answer.body.error.message).toContain('not valid JSON')
    expect(JSON.stringify(answer.body)).not.toContain(pasted)
    expect(JSON.stringify((await status(gateway.url)).config)).not.toContain(pasted)
    await waitFor(() => /config not reloaded.*a value is not in quotes/.test(gateway.output()), { what: 'the error line' })
    expect(gateway.output()).not.toContain(pasted)
    write(valid)
    expect((await reload(gateway.url)).status).toBe(200)
  })

  test('a key replaced by a reload stays redacted (a turn started before it may still echo it)', async () => {
    const valid = config
    const retired = 'sk-retired-by-reload-24680'
    write({ ...valid, providers: { fake: { ...valid.providers.fake, apiKey: retired } } })
    expect((await reload(gateway.url)).body.applied).toEqual(['providers'])
    write({ ...valid, providers: { fake: { ...valid.providers.fake, apiKey: 'sk-in-force-after-reload-13579' } } })
    expect((await reload(gateway.url)).body.applied).toEqual(['providers'])
    expect((await fetch(`${gateway.url}/api/echo-${retired}`)).status).toBe(404)
    // Request lines are in the log file (the console shows them at debug only).
    const logFile = join(home, '.xopcbot', 'logs', 'gateway.log')
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('GET /api/echo-[REDACTED] 404'), { what: 'the request line' })
    expect(readFileSync(logFile, 'utf8')).not.toContain(retired)
    expect(gateway.output()).not.toContain(retired)
    write(valid)
    expect((await reload(gateway.url)).status).toBe(200)
  })

  test('a huge file, a directory or a symlink loop in place of the file: 422, and the gateway serves on', async () => {
    const valid = config
    writeFileSync(`${path}.tmp`, '')
    truncateSync(`${path}.tmp`, 64 * 1024 * 1024)
    renameSync(`${path}.tmp`, path)
    const huge = await reload(gateway.url)
    expect(huge.status).toBe(422)
    expect(huge.body.error.message).toContain('a config file is at most 4 MiB')
    rmSync(path)
    mkdirSync(path)
    expect((await reload(gateway.url)).body.error.message).toContain('it is a directory')
    rmSync(path, { recursive: true })
    symlinkSync(path, path)
    expect((await reload(gateway.url)).body.error.message).toContain('cannot be read (ELOOP)')
    rmSync(path)
    expect((await fetch(`${gateway.url}/health`)).status).toBe(200)
    write(valid)
    expect((await reload(gateway.url)).status).toBe(200)
  })

  test('a file removed and put back as it was is noticed by the watch: the state is ok again', async () => {
    const valid = config
    write(valid)
    expect((await reload(gateway.url)).status).toBe(200)
    rmSync(path)
    await waitFor(async () => (await status(gateway.url)).config.error === 'the file was removed', { what: 'the removal to be noticed' })
    write(valid)
    await waitFor(async () => (await status(gateway.url)).config.state === 'ok', { what: 'the file watch to load it again' })
  })

  test('MCP servers are added and removed one by one; an unchanged one is not touched', async () => {
    const connected = (name: string) => gateway.output().split(`MCP server connected server=${name} `).length - 1
    write({ ...config, mcp: { servers: { one: stdioServer('one') } } })
    await waitFor(async () => (await status(gateway.url)).mcp.one?.state === 'running', { what: 'server one' })
    write({ ...config, mcp: { servers: { ...config.mcp.servers, two: stdioServer('two') } } })
    await waitFor(async () => (await status(gateway.url)).mcp.two?.state === 'running', { what: 'server two' })
    expect((await status(gateway.url)).mcp.two.tools).toContain('two__echo')
    write({ ...config, mcp: { servers: { two: config.mcp.servers.two } } })
    await waitFor(async () => (await status(gateway.url)).mcp.one === undefined, { what: 'server one to go' })
    expect((await status(gateway.url)).mcp.two.state).toBe('running')
    expect([connected('one'), connected('two')]).toEqual([1, 1])
    write({ ...config, mcp: { servers: {} } })
    expect((await reload(gateway.url)).body.applied).toEqual(['mcp.servers.two'])
    expect((await status(gateway.url)).mcp).toEqual({})
  })

  test('a Telegram channel added to the file starts polling; removed, it stops', async () => {
    const channel = { enabled: true, token: telegram.token, apiRoot: telegram.url, dmPolicy: 'open' }
    write({ ...config, channels: { telegram: channel } })
    await waitFor(async () => (await status(gateway.url)).channels.telegram?.state === 'running', { what: 'the new channel to run' })
    expect(telegram.calls.some((c) => c.method === 'getUpdates')).toBe(true)

    // A message answered while the channel is restarted (its allowlist changed) is still delivered.
    oldLlm.queue.length = 0
    newLlm.queue.push({ text: 'a reply that outlives the restart', delayMs: 800 })
    telegram.pushMessage(4242, 'hello during a reload')
    await waitFor(() => newLlm.calls.some((c) => c.lastUser === 'hello during a reload'), { what: 'the turn to start' })
    write({ ...config, channels: { telegram: { ...channel, allowFrom: [4242] } } })
    await waitFor(() => gateway.output().includes('applied=["channels.telegram"]'), { what: 'the channel restart' })
    await waitFor(() => telegram.sent.find((m) => m.text === 'a reply that outlives the restart'), { what: 'the reply' })
    await waitFor(async () => (await status(gateway.url)).channels.telegram?.state === 'running', { what: 'the restarted channel' })

    write({ ...config, channels: {} })
    await waitFor(async () => (await status(gateway.url)).channels.telegram === undefined, { what: 'the channel to go' })
    await waitFor(() => gateway.output().includes('[channels] channel removed channel=telegram'), { what: 'the removal line' })
    const send = await postJson(`${gateway.url}/api/send`, { channel: 'telegram', chat_id: '1', content: 'x' })
    expect(send.status).toBe(404)
  })
})

test.skipIf(process.platform === 'win32')('SIGHUP reloads the config (here a symlinked file whose changes the watch does not see)', async () => {
  const llm = startFakeLlm()
  const home = tempHome()
  const port = await freePort()
  const real = join(home, 'real-config.json')
  const file = (model: string) => JSON.stringify({ gateway: { host: '127.0.0.1', port }, agent: { model, maxRetries: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } } })
  writeFileSync(real, file('fake/first'))
  mkdirSync(join(home, '.xopcbot'), { recursive: true })
  symlinkSync(real, configPathOf(home))
  const gateway = await startFromFile(home, port)
  try {
    writeFileSync(real, file('fake/second'))
    gateway.proc.kill('SIGHUP')
    await waitFor(async () => (await status(gateway.url)).model.name === 'fake/second', { what: 'the SIGHUP reload' })
    expect(gateway.output()).toMatch(/config reloaded reason=SIGHUP applied=\["agent"\]/)
    expect(await json(await postJson(`${gateway.url}/api/agent`, { message: 'hi' }))).toMatchObject({ model: 'fake/second' })
    expect(gateway.proc.exitCode).toBeNull()
  } finally {
    expect(await gateway.stop()).toBe(0)
    llm.stop()
  }
})

// A closed terminal sends SIGHUP too: the gateway run in it must stop, not run on with a console that throws.
const python = Bun.which('python3')
test.skipIf(process.platform === 'win32' || !python)('a foreground gateway whose terminal closes stops (SIGHUP from a hangup is no reload)', async () => {
  const home = tempHome()
  const port = await freePort()
  mkdirSync(join(home, '.xopcbot'), { recursive: true })
  writeFileSync(configPathOf(home), JSON.stringify({ gateway: { host: '127.0.0.1', port } }))
  // A real terminal: python's pty.spawn runs the gateway as the session leader of a new pseudo-terminal.
  const terminal = Bun.spawn([python!, '-c', 'import pty, sys; pty.spawn(sys.argv[1:])', process.execPath, ENTRY, 'gateway'], { env: childEnv(home), stdin: 'pipe', stdout: 'pipe', stderr: 'ignore' })
  let screen = ''
  void (async () => {
    for await (const chunk of terminal.stdout) screen += new TextDecoder().decode(chunk)
  })()
  const url = `http://127.0.0.1:${port}`
  // The banner is printed in the same tick as the signal handlers are installed.
  await waitFor(() => screen.includes('Press Ctrl+C to stop'), { what: 'the banner', timeoutMs: 15_000 })
  const pid = (await json(await fetch(`${url}/api/status`))).pid as number | undefined
  // The terminal window closes: its end of the pseudo-terminal is gone, and the kernel sends SIGHUP.
  terminal.kill('SIGKILL')
  const logFile = join(home, '.xopcbot', 'logs', 'gateway.log')
  try {
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"msg":"gateway stopped","reason":"SIGHUP"'), { what: 'the gateway to stop', timeoutMs: 15_000 })
    await waitFor(async () => (await fetch(`${url}/health`).catch(() => null)) === null, { what: 'the port to close' })
  } finally {
    if (pid && (await fetch(`${url}/health`).catch(() => null))) process.kill(pid, 'SIGKILL')
  }
})
