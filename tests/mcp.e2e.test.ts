import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { startFakeLlm, type FakeLlm, type RecordedCall } from './fakes/llm'
import { startFakeMcpHttp, type FakeMcpHttp } from './fakes/mcp-http'
import { stdioServer } from './fakes/mcp-tools'
import { buildBinary, freePort, homeWithConfig, runCli, startGateway, type RunningGateway, type Runner } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const HEADER_SECRET = 'Bearer mcp-header-secret-4711'
const PROVIDER_KEY = 'sk-provider-key-must-not-leak-0815'

/** The last tool result the model was sent in this call (OpenAI protocol), or null. */
function lastToolResult(call: RecordedCall): string | null {
  const messages: any[] = call.body.messages ?? []
  const tool = messages.findLast((m) => m.role === 'tool')
  return tool ? (typeof tool.content === 'string' ? tool.content : JSON.stringify(tool.content)) : null
}

/** The fake model answers with what the last tool returned, so the reply shows that the result reached it. */
function modelThatQuotesTools(fake: FakeLlm) {
  fake.fallback = (call) => {
    const result = lastToolResult(call)
    return { text: result === null ? `echo: ${call.lastUser}` : `the tool said: ${result}` }
  }
}

const llmConfig = (fake: FakeLlm) => ({ agent: { model: 'fake/echo-1', maxRetries: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${fake.url}/v1` } } })

async function status(gateway: RunningGateway) {
  return json(await fetch(`${gateway.url}/api/status`))
}

/** One agent turn in which the fake model first calls `tool` with `input`. */
async function turnCalling(gateway: RunningGateway, fake: FakeLlm, tool: string, input: unknown = {}) {
  fake.queue.push({ toolCalls: [{ name: tool, input }] })
  const response = await postJson(`${gateway.url}/api/agent`, { message: `please use ${tool}`, session: `s-${crypto.randomUUID()}` })
  return { status: response.status, body: await json(response) }
}

/** The pids whose parent is `parent` (Linux /proc). */
function childrenOf(parent: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent) out.push({ pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ') })
    } catch {}
  }
  return out
}

/** A process that exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

describe('MCP servers as tool sources', () => {
  let fake: FakeLlm
  let http: FakeMcpHttp
  let gateway: RunningGateway

  beforeAll(async () => {
    fake = startFakeLlm()
    modelThatQuotesTools(fake)
    http = startFakeMcpHttp('web')
    const home = homeWithConfig({
      ...llmConfig(fake),
      mcp: {
        servers: {
          files: stdioServer('files', { env: { MY_VAR: 'visible' }, tools: ['echo', 'env', 'pid'] }),
          slow: stdioServer('slow', { tools: ['hang'], timeoutMs: 300, env: { MCP_FAKE_STUBBORN: '1' } }),
          web: { url: http.url, headers: { authorization: HEADER_SECRET } },
          off: stdioServer('off', { enabled: false }),
        },
      },
    })
    gateway = await startGateway({ home, env: { OPENAI_API_KEY: PROVIDER_KEY } })
    await waitFor(async () => {
      const { mcp } = await status(gateway)
      return mcp.files.state === 'running' && mcp.slow.state === 'running' && mcp.web.state === 'running'
    }, { what: 'the MCP servers to be running', timeoutMs: 20_000 })
  }, 40_000)

  afterAll(async () => {
    if (gateway.proc.exitCode === null) await gateway.stop('SIGKILL')
    fake.stop()
    http.stop()
  })

  test('a result over 100,000 characters reaches the model cut, with a note saying so', async () => {
    const { status: code, body } = await turnCalling(gateway, fake, 'files__echo', { text: 'y'.repeat(150_000) })
    expect(code).toBe(200)
    expect(body.reply).toContain('[cut: the tool returned 150017 characters; the first 100000 are shown]')
    expect(body.reply.length).toBeLessThan(100_200)
  })

  test('/api/status reports each server with the tools the model sees; the allowlist hides the others', async () => {
    const { mcp } = await status(gateway)
    expect(mcp.files).toEqual({ state: 'running', tools: ['files__echo', 'files__env', 'files__pid'] })
    expect(mcp.slow).toEqual({ state: 'running', tools: ['slow__hang'] })
    expect(mcp.web.tools).toContain('web__secret')
    expect(mcp.off).toEqual({ state: 'disabled', tools: [] })
    // The header reached the HTTP server, but no response and no log line repeats it.
    expect(http.headers.some((h) => h.get('authorization') === HEADER_SECRET)).toBe(true)
    expect(JSON.stringify(mcp)).not.toContain('mcp-header-secret')
  })

  test('the model calls a stdio server tool and the reply uses its result', async () => {
    const { status: code, body } = await turnCalling(gateway, fake, 'files__echo', { text: 'hello there' })
    expect(code).toBe(200)
    expect(body.reply).toContain('echo from files: hello there')
    const offered = Object.keys(Object.fromEntries((fake.calls.at(-2)!.body.tools ?? []).map((t: any) => [t.function.name, t])))
    expect(offered).toEqual(expect.arrayContaining(['time', 'files__echo', 'web__echo', 'slow__hang']))
    expect(offered).not.toContain('files__secret')
    expect(offered.some((name) => name.startsWith('off__'))).toBe(false)
  })

  test('the model calls a Streamable HTTP server tool and the reply uses its result', async () => {
    const { status: code, body } = await turnCalling(gateway, fake, 'web__echo', { text: 'over http' })
    expect(code).toBe(200)
    expect(body.reply).toContain('echo from web: over http')
  })

  test('a stdio server sees only its own env plus PATH and HOME, never the gateway environment', async () => {
    const { body } = await turnCalling(gateway, fake, 'files__env')
    expect(body.reply).toContain('env keys: HOME,MY_VAR,PATH')
    expect(body.reply).not.toContain('OPENAI_API_KEY')
  })

  test('a tool that hangs past timeoutMs gives the model a tool error, and the turn still answers', async () => {
    const started = Date.now()
    const { status: code, body } = await turnCalling(gateway, fake, 'slow__hang')
    expect(code).toBe(200)
    expect(body.reply).toContain('slow__hang did not answer within 300 ms')
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  test('xopcbot mcp list --json and gateway status show the running servers', async () => {
    const list = await runCli(['mcp', 'list', '--json'], { home: gateway.home })
    expect(list.code).toBe(0)
    const listed = JSON.parse(list.stdout)
    expect(listed.source).toBe('gateway')
    expect(listed.servers.files.state).toBe('running')
    expect(listed.servers.off.state).toBe('disabled')
    const shown = await runCli(['gateway', 'status'], { home: gateway.home })
    expect(shown.stdout).toContain('🧰 MCP servers:')
    expect(shown.stdout).toContain('files: running (3 tools)')
    expect(shown.stdout).toContain('off: disabled')
  })

  test('a server that crashes is restarted (its state visible meanwhile) and works again', async () => {
    const before = await turnCalling(gateway, fake, 'files__pid')
    const pid = Number(/pid=(\d+)/.exec(before.body.reply)![1])
    expect(pid).toBeGreaterThan(0)
    process.kill(pid, 'SIGKILL')
    const failed = await waitFor(async () => {
      const { mcp } = await status(gateway)
      return mcp.files.state !== 'running' ? mcp.files : null
    }, { what: 'the crash to show in /api/status', intervalMs: 10 })
    expect(['failed', 'starting']).toContain(failed.state)
    expect(failed.tools).toEqual([])
    await waitFor(async () => (await status(gateway)).mcp.files.state === 'running', { what: 'the server to be restarted', timeoutMs: 15_000 })
    const after = await turnCalling(gateway, fake, 'files__pid')
    const newPid = Number(/pid=(\d+)/.exec(after.body.reply)![1])
    expect(newPid).not.toBe(pid)
    expect((await turnCalling(gateway, fake, 'files__echo', { text: 'back' })).body.reply).toContain('echo from files: back')
  }, 30_000)

  test('an HTTP server that goes away is reported failed and reconnected when it is back', async () => {
    http.stop()
    const during = await turnCalling(gateway, fake, 'web__echo', { text: 'anyone?' })
    expect(during.status).toBe(200)
    expect(during.body.reply).toContain('web__echo failed')
    const failed = await waitFor(async () => {
      const { mcp } = await status(gateway)
      return mcp.web.state !== 'running' ? mcp.web : null
    }, { what: 'the lost connection to show in /api/status', intervalMs: 10 })
    expect(failed.tools).toEqual([])
    http.restart()
    await waitFor(async () => (await status(gateway)).mcp.web.state === 'running', { what: 'the HTTP server to be reconnected', timeoutMs: 15_000 })
    expect((await turnCalling(gateway, fake, 'web__echo', { text: 'back' })).body.reply).toContain('echo from web: back')
  }, 30_000)

  test.skipIf(process.platform !== 'linux')('gateway stop closes every client and leaves no MCP server process (Linux: reads /proc)', async () => {
    const servers = childrenOf(gateway.proc.pid).filter((c) => c.cmdline.includes('mcp-stdio.ts'))
    expect(servers.length).toBe(2)
    const stop = await runCli(['gateway', 'stop'], { home: gateway.home })
    expect(stop.code).toBe(0)
    await gateway.proc.exited
    for (const { pid } of servers) expect(alive(pid)).toBe(false)
    expect(gateway.output()).not.toContain('mcp-header-secret')
    expect(gateway.output()).not.toContain(PROVIDER_KEY)
  }, 20_000)
})

describe('MCP servers at start', () => {
  test('/health answers before a slow MCP server is up', async () => {
    const fake = startFakeLlm()
    const home = homeWithConfig({ ...llmConfig(fake), mcp: { servers: { lazy: stdioServer('lazy', { env: { MCP_FAKE_DELAY_MS: '2500' } }) } } })
    const gateway = await startGateway({ home })
    try {
      // /health answered (startGateway waited for it) while the server is still coming up.
      expect((await status(gateway)).mcp.lazy.state).toBe('starting')
      await waitFor(async () => (await status(gateway)).mcp.lazy.state === 'running', { what: 'the slow server', timeoutMs: 15_000 })
    } finally {
      await gateway.stop()
      fake.stop()
    }
  }, 30_000)

  test('a server with neither command nor url is a config error naming it', async () => {
    const home = homeWithConfig({ mcp: { servers: { broken: { args: ['x'] } } } })
    const result = await runCli(['gateway', '--host', '127.0.0.1', '--port', String(await freePort())], { home })
    expect(result.code).toBe(78)
    expect(result.stderr).toContain('mcp.servers.broken: needs "command" (a stdio server) or "url" (a Streamable HTTP server)')
  })
})

describe('xopcbot mcp without a running gateway', () => {
  const home = homeWithConfig({ mcp: { servers: { files: stdioServer('files'), off: stdioServer('off', { enabled: false }) } } })

  test('mcp list --json falls back to the config', async () => {
    const result = await runCli(['mcp', 'list', '--json'], { home })
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ source: 'config', servers: { files: { state: 'not connected', tools: [] }, off: { state: 'disabled', tools: [] } } })
  })

  test('mcp call runs one tool and prints its result; a tool error exits 1', async () => {
    const ok = await runCli(['mcp', 'call', 'files', 'echo', '--args', '{"text":"by hand"}'], { home })
    expect(ok.stderr).toBe('')
    expect(ok.code).toBe(0)
    expect(ok.stdout.trim()).toBe('echo from files: by hand')
    const failed = await runCli(['mcp', 'call', 'files', 'fail'], { home })
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain('reported an error: this tool always fails')
  })

  test('mcp call validates --args and the server name', async () => {
    const notObject = await runCli(['mcp', 'call', 'files', 'echo', '--args', '[1,2]'], { home })
    expect(notObject.code).toBe(2)
    expect(notObject.stderr).toContain('--args: must be a JSON object')
    const notJson = await runCli(['mcp', 'call', 'files', 'echo', '--args', '{text:'], { home })
    expect(notJson.code).toBe(2)
    expect(notJson.stderr).toContain('--args: is not valid JSON')
    const unknown = await runCli(['mcp', 'call', 'nope', 'echo'], { home })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('There is no MCP server "nope"')
  })
})

describe('MCP in the compiled binary', () => {
  let binary: Runner

  beforeAll(() => {
    binary = buildBinary()
  }, 180_000)

  test('a stdio MCP server tool is callable through the binary (the MCP client is bundled)', async () => {
    const fake = startFakeLlm()
    modelThatQuotesTools(fake)
    const home = homeWithConfig({ ...llmConfig(fake), mcp: { servers: { files: stdioServer('files') } } })
    const gateway = await startGateway({ home, runner: binary })
    try {
      await waitFor(async () => (await status(gateway)).mcp.files.state === 'running', { what: 'the server under the binary', timeoutMs: 15_000 })
      const { body } = await turnCalling(gateway, fake, 'files__echo', { text: 'from the binary' })
      expect(body.reply).toContain('echo from files: from the binary')
    } finally {
      expect(await gateway.stop()).toBe(0)
      fake.stop()
    }
  }, 40_000)
})
