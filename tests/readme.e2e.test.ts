import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Config } from '../src/config/schema'
import { stdioServer } from './fakes/mcp-tools'
import { makeWorld, type World } from './helpers/channels'
import { childEnv, configPathOf, ENTRY, freePort, homeWithConfig, lockOf, ROOT, startGateway, tempHome, writeConfig, type RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

// Every code block of the README, found by the heading it stands under. Each is run here as written (real
// processes, the real curl, only the port — and ids the README cannot know — substituted), run by another test
// file (named below, which must still mention it), or listed in NOT_RUN_HERE with the reason; every block is
// also checked for syntax. A new block with a language tag that none of these lists fails the first test, so a
// new example gets a test by the time it lands.

interface Block {
  heading: string
  lang: string
  code: string
  line: number
}

/** The fenced blocks of a markdown text, with the heading they stand under (indented blocks of list items too). */
function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  let heading = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (/^#{1,6} /.test(line)) {
      heading = line.replace(/^#+ /, '')
      continue
    }
    const open = /^( *)```(\S*)\s*$/.exec(line)
    if (!open) continue
    const indent = open[1]!.length
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length && !/^ *```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.replace(new RegExp(`^ {0,${indent}}`), ''))
    blocks.push({ heading, lang: open[2]!, code: `${body.join('\n')}\n`, line: i + 1 })
    i = j
  }
  return blocks
}

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const blocks = readmeBlocks(readme)

/** A block is named by its heading and how its text starts. */
interface Where {
  heading: string
  starts: string
}
const matches = (block: Block, where: Where) => block.heading === where.heading && block.code.trimStart().startsWith(where.starts)

/** Blocks the tests of this file run (each test takes its block through `block`). */
const RUN_HERE: Where[] = [
  { heading: 'Quick start', starts: 'npm ci && npm start' },
  { heading: 'Quick start', starts: 'curl http://localhost:18790/health' },
  { heading: 'Configuration', starts: '{\n  "dataDir": null' },
  { heading: 'Changing the config from the command line', starts: 'xopcbot config schema >' },
  { heading: 'Tool policy', starts: '"agent": { "tools"' },
  { heading: 'MCP servers', starts: '{\n  "mcp"' },
  { heading: 'Backup and restore', starts: 'xopcbot backup' },
  { heading: 'API', starts: '{ "error"' },
  { heading: 'API', starts: 'curl -i -X PUT' },
  { heading: '`GET /health`', starts: 'curl' },
  { heading: '`GET /api/status`', starts: 'curl' },
  { heading: '`GET /api/status`', starts: '"telegram": {' },
  { heading: '`POST /api/config/reload`', starts: 'curl' },
  { heading: '`GET /api/logs`', starts: 'curl' },
  { heading: '`GET /api/logs/stream`', starts: 'curl' },
  { heading: '`GET /api/usage`', starts: 'curl' },
  { heading: '`GET /openapi.json`', starts: 'curl' },
  { heading: '`GET /metrics`', starts: 'curl' },
  { heading: '`POST /api/agent`', starts: 'curl -X POST' },
  { heading: '`POST /api/agent`', starts: 'curl -N -X POST' },
  { heading: 'Models and providers', starts: '"agent": { "model"' },
  { heading: 'Trying it without an API key', starts: 'npx bun tests/fakes/llm.ts' },
  { heading: 'Trying it without an API key', starts: '{ "agent": { "model": "fake/echo" }' },
  { heading: 'Session keys', starts: 'key=$(node -p' },
  { heading: '`GET /api/sessions`', starts: 'curl' },
  { heading: '`GET /api/sessions/:key`, `DELETE /api/sessions/:key`', starts: 'curl' },
  { heading: '`GET /api/sessions/:key`, `DELETE /api/sessions/:key`', starts: '{"role":"assistant"' },
  { heading: '`POST /api/message`', starts: 'curl' },
  { heading: '`POST /api/message/sync`', starts: 'curl' },
  { heading: '`GET /api/message/:id`', starts: 'curl' },
  { heading: '`GET /api/messages`', starts: 'curl' },
  { heading: '`POST /api/send`', starts: 'curl' },
  { heading: 'Cron jobs: `/api/cron`', starts: 'curl' },
  { heading: 'Pairing: `/api/pairing`', starts: 'curl' },
  { heading: 'Authentication', starts: 'curl -H "Authorization: Bearer $XOPCBOT_GATEWAY_TOKEN"' },
  { heading: 'Authentication', starts: '(umask 077 && openssl rand' },
  { heading: 'Channels', starts: '{ "channels": { "telegram": { "enabled": true, "token": "${TELEGRAM_BOT_TOKEN}", "allowFrom": ["alice", 123456789] } } }' },
  { heading: 'Channels', starts: '{ "channels": { "telegram": { "enabled": true, "token": "${TELEGRAM_BOT_TOKEN}", "allowFrom": ["alice"],' },
  { heading: 'Channels', starts: 'xopcbot pairing list' },
]

/** Blocks another test file runs: that file must still mention `evidence`; `note` says what is not run anywhere. */
const RUN_ELSEWHERE: (Where & { file: string; evidence: string; note?: string })[] = [
  {
    heading: 'One binary',
    starts: 'npm run build',
    file: 'tests/build.test.ts',
    evidence: "'build/build.ts'",
    note: 'tests/binary.e2e.test.ts runs the built binary\'s `gateway --port`; `build:all` is not run by the suite: it cross-compiles seven targets (minutes, and the other platforms\' Bun runtimes)',
  },
  { heading: 'Running as a service', starts: './xopcbot-linux-x64 gateway install', file: 'tests/service-systemd.e2e.test.ts', evidence: "'--runtime', 'binary'", note: 'against a real systemd user manager, skipped where there is none' },
  {
    heading: 'Installing a release binary',
    starts: 'npm run build && sh install-scripts/install.sh',
    file: 'tests/build.test.ts',
    evidence: "'--verify-only'",
    note: 'the `--sha256 <hex> https://…` line needs a download from the internet and is not run',
  },
  { heading: 'Updating', starts: 'npm run build:all && npm run release', file: 'tests/update.test.ts', evidence: "'build/release.ts'", note: 'release sites served on 127.0.0.1 stand in for /srv/www and releases.example.com' },
  { heading: 'Changing the config from the command line', starts: 'xopcbot config set agent.model', file: 'tests/config-command.test.ts', evidence: '### Changing the config from the command line' },
  { heading: '`POST /api/webhook/:channel`', starts: "body='", file: 'tests/examples.e2e.test.ts', evidence: '### `POST /api/webhook/:channel`' },
  { heading: 'From JavaScript and Python', starts: 'async function sendMessage', file: 'tests/examples.e2e.test.ts', evidence: '### From JavaScript and Python' },
  { heading: 'From JavaScript and Python', starts: 'import requests', file: 'tests/examples.e2e.test.ts', evidence: '### From JavaScript and Python', note: 'skipped, saying so, without Python\'s requests package' },
  { heading: 'Receiving webhook deliveries', starts: 'import hashlib', file: 'tests/examples.e2e.test.ts', evidence: '### Receiving webhook deliveries' },
  { heading: 'Receiving webhook deliveries', starts: "import { createServer } from 'node:http'", file: 'tests/examples.e2e.test.ts', evidence: '### Receiving webhook deliveries' },
]

/** Blocks that cannot run here, and why (each is still checked for syntax where a checker exists). */
const NOT_RUN_HERE: (Where & { why: string })[] = [
  { heading: 'Installing a release binary', starts: 'powershell', why: 'Windows PowerShell and Task Scheduler: there are none on Linux (tests/service-managers.test.ts checks the schtasks side)' },
  { heading: '`GET /metrics`', starts: 'scrape_configs:', why: 'a Prometheus config: no Prometheus here; its shape is checked and /metrics is scraped with the same Bearer token by the curl example' },
  {
    heading: 'OpenAI-compatible: `POST /v1/chat/completions`, `GET /v1/models`',
    starts: 'from openai import OpenAI',
    why: "needs Python's openai package, which CI's machine does not have (a test below runs it where it is installed); tests/api-surface.e2e.test.ts drives /v1 with the JavaScript openai client",
  },
]

const notRunHere = (starts: string) => blocks.find((b) => matches(b, NOT_RUN_HERE.find((w) => w.starts === starts)!))!.code

/** Blocks without a language tag are shown output or layouts; one that starts like a command needs a tag (and a test). */
const looksLikeCommand = (code: string) => /^(\$ |curl |xopcbot |npm |npx |bun |sh |node )/.test(code.trimStart())

/** A block of RUN_HERE, for the test that runs it. */
function block(heading: string, starts: string): string {
  if (!RUN_HERE.some((w) => w.heading === heading && w.starts === starts)) throw new Error(`not in RUN_HERE: ${heading} / ${starts}`)
  const found = blocks.filter((b) => matches(b, { heading, starts }))
  if (found.length !== 1) throw new Error(`README: ${found.length} blocks under "${heading}" start with ${JSON.stringify(starts)}`)
  return found[0]!.code
}

describe('every README code block is covered', () => {
  test('each block with a language is run here, run by a named test file, or listed with the reason it cannot run', () => {
    const lists = [...RUN_HERE, ...RUN_ELSEWHERE, ...NOT_RUN_HERE]
    const uncovered = blocks
      .filter((b) => b.lang !== '' || looksLikeCommand(b.code))
      .filter((b) => lists.filter((w) => matches(b, w)).length !== 1)
      .map((b) => `README.md:${b.line} (${b.lang || 'no language'}) under "${b.heading}": ${b.code.split('\n')[0]}`)
    // A block listed here needs a test in this file (RUN_HERE), one elsewhere (RUN_ELSEWHERE), or a reason (NOT_RUN_HERE).
    expect(uncovered).toEqual([])
    // And no entry names a block that is gone (a stale entry would hide a renamed example).
    const stale = lists.filter((w) => !blocks.some((b) => matches(b, w))).map((w) => `${w.heading} / ${w.starts}`)
    expect(stale).toEqual([])
  })

  test('the test files named for the others still run them', () => {
    for (const entry of RUN_ELSEWHERE) expect({ entry: entry.starts, mentions: readFileSync(join(ROOT, entry.file), 'utf8').includes(entry.evidence) }).toEqual({ entry: entry.starts, mentions: true })
  })

  test('every block parses: sh -n, JSON, JavaScript, Python, YAML', () => {
    const python = Bun.which('python3')
    for (const b of blocks) {
      const where = `README.md:${b.line}`
      if (['sh', 'bash', 'shell'].includes(b.lang)) {
        const check = Bun.spawnSync(['sh', '-n'], { stdin: Buffer.from(b.code), stderr: 'pipe' })
        expect({ where, stderr: check.stderr.toString() }).toEqual({ where, stderr: '' })
      } else if (b.lang === 'json') {
        expect({ where, parses: parseJsonBlock(b.code) !== undefined }).toEqual({ where, parses: true })
      } else if (b.lang === 'javascript' || b.lang === 'js') {
        expect(() => new Bun.Transpiler({ loader: 'js' }).transformSync(b.code)).not.toThrow()
      } else if (b.lang === 'yaml' || b.lang === 'yml') {
        expect(Bun.YAML.parse(b.code)).toBeTruthy()
      } else if (b.lang === 'python' && python) {
        const check = Bun.spawnSync([python, '-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { stdin: Buffer.from(b.code), stderr: 'pipe' })
        expect({ where, stderr: check.stderr.toString() }).toEqual({ where, stderr: '' })
      }
    }
  })

  test('the Prometheus scrape config scrapes /metrics with the token as the README says', () => {
    const config = Bun.YAML.parse(notRunHere('scrape_configs:')) as any
    expect(config.scrape_configs[0].authorization).toEqual({ type: 'Bearer', credentials_file: expect.any(String) })
    expect(config.scrape_configs[0].static_configs[0].targets[0]).toEndWith(':18790')
  })
})

/**
 * A JSON block: a whole document, an object's members (`"agent": {…}, "channels": {…}`), or several objects one
 * after another (messages as a list shows them). undefined: none of these.
 */
function parseJsonBlock(code: string): unknown {
  for (const text of [code, `{${code}}`, `[${code.replace(/}\s*\n\s*{/g, '},{')}]`]) {
    try {
      return JSON.parse(text)
    } catch {}
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------
// Running shell examples: `xopcbot` is the source CLI and `curl` the real curl, which also prints the status.

const bin = mkdtempSync(join(tmpdir(), 'xopcbot-readme-bin-'))
const realCurl = Bun.which('curl')!
writeFileSync(join(bin, 'xopcbot'), `#!/bin/sh\nexec '${process.execPath}' '${ENTRY}' "$@"\n`, { mode: 0o755 })
writeFileSync(join(bin, 'curl'), `#!/bin/sh\nexec '${realCurl}' -sS -w '\\n%{http_code}\\n' "$@"\n`, { mode: 0o755 })

interface Sh {
  home: string
  port: number
  env?: Record<string, string>
  /** README text → what to run instead (ids the README cannot know) */
  subst?: Record<string, string>
}

const prepare = (code: string, { port, subst = {} }: Sh) => {
  let text = code.replaceAll('localhost:18790', `localhost:${port}`).replaceAll('my-server:18790', `localhost:${port}`)
  for (const [from, to] of Object.entries(subst)) text = text.replaceAll(from, to)
  return text
}
const shEnv = ({ home, env = {} }: Sh) => childEnv(home, { PATH: `${bin}:${process.env.PATH}`, ...env })

/** Runs shell code as the README shows it, to the end. */
async function sh(code: string, options: Sh) {
  const proc = Bun.spawn(['bash', '-c', prepare(code, options)], { cwd: ROOT, env: shEnv(options), stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000)
  const [stdout, stderr, exit] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  return { stdout, stderr, exit }
}

/**
 * Starts shell code that keeps running (a server, a stream) in a process group of its own; its output so far is
 * in `out()`, and `interrupt` is Ctrl+C in its terminal: SIGINT to the whole group.
 */
function shBackground(code: string, options: Sh) {
  const proc = Bun.spawn(['bash', '-c', prepare(code, options)], { cwd: ROOT, env: shEnv(options), stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', detached: true })
  const interrupt = () => {
    try {
      process.kill(-proc.pid, 'SIGINT')
    } catch {}
  }
  let out = ''
  const decoder = new TextDecoder()
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true })
  }
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)])
  return { proc, interrupt, out: () => out, done: async () => (await proc.exited, await pumped, out) }
}

/** The commands of a block, each with the `# …` comment lines that follow it (what the README says it prints). */
function steps(code: string): { command: string; shows: string }[] {
  const result: { command: string; shows: string }[] = []
  let command: string[] = []
  let shows: string[] = []
  for (const line of code.trimEnd().split('\n')) {
    if (/^#( |$)/.test(line)) {
      shows.push(line.replace(/^# ?/, ''))
      continue
    }
    if (shows.length || (command.length && !/\\$/.test(command.at(-1)!) && !/^\s/.test(line))) {
      result.push({ command: command.join('\n'), shows: shows.join('\n') })
      command = []
      shows = []
    }
    command.push(line)
  }
  if (command.length) result.push({ command: command.join('\n'), shows: shows.join('\n') })
  return result
}

/** Every key anywhere in a JSON value. */
function keysOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) keysOf(item, into)
  else if (value && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) {
      into.add(key)
      keysOf(item, into)
    }
  return into
}

/**
 * Runs one curl step and checks its answer against the README's comment: the status code it names (else 200),
 * JSON, `"status":"ok"` where it shows that, and every key it shows.
 */
async function curlStep(step: { command: string; shows: string }, options: Sh): Promise<any> {
  const { stdout, stderr } = await sh(step.command, options)
  const lines = stdout.trimEnd().split('\n')
  const status = Number(lines.pop())
  const shownStatus = /^(\d{3}) /.exec(step.shows)
  expect({ command: step.command, status, stderr }).toEqual({ command: step.command, status: shownStatus ? Number(shownStatus[1]) : 200, stderr: '' })
  const body = JSON.parse(lines.join('\n'))
  if (/^(\d{3} )?\{"status":"ok"/.test(step.shows)) expect(body.status).toBe('ok')
  const shownKeys = [...step.shows.matchAll(/"([A-Za-z_]+)":/g)].map((m) => m[1]!)
  const actual = keysOf(body)
  expect({ command: step.command, missing: shownKeys.filter((k) => !actual.has(k)) }).toEqual({ command: step.command, missing: [] })
  return body
}

/** Runs every step of a curl block in order; `before` may prepare a step (and add substitutions). */
async function curlBlock(code: string, options: Sh, before: (index: number, subst: Record<string, string>, bodies: any[]) => Promise<void> | void = () => {}) {
  const subst = { ...options.subst }
  const bodies: any[] = []
  for (const [index, step] of steps(code).entries()) {
    await before(index, subst, bodies)
    bodies.push(await curlStep(step, { ...options, subst }))
  }
  return bodies
}

const expectValidConfig = (value: unknown) => {
  const parsed = Config.safeParse(value)
  expect(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([])
  return parsed.data!
}

const TOKEN = 'readme-example-token-0123456789'

// ---------------------------------------------------------------------------------------------------------

describe('Quick start, on npm as it says', () => {
  /** `npm start` (its gateway on `port` through XOPCBOT_GATEWAY_PORT, as the README's port is taken by nothing here). */
  async function npmStart(home: string, port: number) {
    const started = shBackground('npm start', { home, port, env: { XOPCBOT_GATEWAY_PORT: String(port), XOPCBOT_GATEWAY_HOST: '127.0.0.1' } })
    const health = await waitFor(
      async () => {
        if (started.proc.exitCode !== null) throw new Error(`npm start exited: ${started.out()}`)
        return await fetch(`http://127.0.0.1:${port}/health`).then((r) => (r.ok ? r.json() : null), () => null)
      },
      { what: 'npm start to serve /health', timeoutMs: 20_000 },
    )
    // "Press Ctrl+C to stop it."
    const stop = async () => {
      started.interrupt()
      await started.done()
      await waitFor(() => fetch(`http://127.0.0.1:${port}/health`).then(() => false, () => true), { what: 'the gateway to stop' })
    }
    return { health, stop, out: started.out }
  }

  test('the Node the README names is the one package.json declares, and this machine has it (no EBADENGINE for us)', () => {
    const named = /You need Node\.js ([\d.]+) or newer/.exec(readme)![1]!
    const engines = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines
    expect(engines.node).toBe(`>=${named}`)
    const node = Bun.spawnSync(['node', '--version'], { stdout: 'pipe' }).stdout.toString().trim()
    expect({ node, satisfies: Bun.semver.satisfies(node.replace(/^v/, ''), engines.node) }).toEqual({ node, satisfies: true })
    // What Node runs of the quick start besides npm: the bun package's install script, which asks for no newer Node.
    expect(JSON.parse(readFileSync(join(ROOT, 'node_modules/bun/package.json'), 'utf8')).engines?.node).toBeUndefined()
  })

  test('npm start serves the gateway with no config file, and the health curl answers as shown', async () => {
    const code = block('Quick start', 'npm ci && npm start')
    // `npm ci` (it replaces node_modules, which this run uses) and `npm test` are what CI runs: .ci/run.
    expect(code.split('\n').map((l) => l.split('#')[0]!.trim()).filter(Boolean)).toEqual(['npm ci && npm start', 'npm ci && npm test'])
    expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toContain('npm ci --no-audit --no-fund && npm test')
    const home = tempHome()
    const port = await freePort()
    const gateway = await npmStart(home, port)
    try {
      const [step] = steps(block('Quick start', 'curl http://localhost:18790/health'))
      const body = await curlStep(step!, { home, port })
      expect(body).toEqual({ status: 'healthy', uptime: expect.any(Number), version: expect.any(String) })
      expect(gateway.out()).toContain('(not found: using defaults)')
    } finally {
      await gateway.stop()
    }
    expect(existsSync(configPathOf(home))).toBe(false)
  })

  test('Trying it without an API key: the fake model, that config, npm start, and the /api/agent curl', async () => {
    const fakePort = await freePort()
    const fake = shBackground(block('Trying it without an API key', 'npx bun tests/fakes/llm.ts').replaceAll('18080', String(fakePort)), { home: tempHome(), port: 0 })
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${fakePort}/v1/models`).then((r) => r.ok, () => false), { what: 'the fake model server', timeoutMs: 20_000 })
      const config = JSON.parse(block('Trying it without an API key', '{ "agent": { "model": "fake/echo" }').replaceAll('18080', String(fakePort)))
      expectValidConfig(config)
      const home = tempHome()
      writeConfig(home, config)
      const port = await freePort()
      const gateway = await npmStart(home, port)
      try {
        const [step] = steps(block('`POST /api/agent`', 'curl -X POST'))
        const body = await curlStep(step!, { home, port })
        // "the reply is `echo: What is 2+2?`"
        expect(body).toEqual({ status: 'ok', reply: 'echo: What is 2+2?', session: 'default', model: 'fake/echo' })
      } finally {
        await gateway.stop()
      }
    } finally {
      fake.interrupt()
      await fake.done()
    }
  })
})

describe('config examples validate against the config schema', () => {
  test('the whole file with its defaults is exactly the defaults', () => {
    const shown = JSON.parse(block('Configuration', '{\n  "dataDir": null'))
    expect(expectValidConfig(shown)).toEqual(Config.parse({}))
    expect(Config.parse({})).toEqual(Config.parse(shown))
  })

  test('fragments and whole files of Tool policy, MCP servers, Models and providers and Channels', () => {
    // "…" stands for a value the reader fills in: here a URL and a secret long enough.
    const tools = parseJsonBlock(block('Tool policy', '"agent": { "tools"').replace('"url": "…"', '"url": "https://hooks.example.com/in"').replace('"secret": "…"', '"secret": "a-secret-of-sixteen-plus"'))
    expectValidConfig(tools)
    expectValidConfig(JSON.parse(block('MCP servers', '{\n  "mcp"')))
    const fallbacks = expectValidConfig(parseJsonBlock(block('Models and providers', '"agent": { "model"')))
    expect(fallbacks.agent.model).toEqual({ primary: 'anthropic/claude-sonnet-4-5', fallbacks: ['openai/gpt-4o-mini', 'ollama/llama3.2'] })
    for (const starts of RUN_HERE.filter((w) => w.heading === 'Channels' && w.starts.startsWith('{')).map((w) => w.starts)) {
      expectValidConfig(JSON.parse(block('Channels', starts)))
    }
  })
})

describe('API examples against a gateway with the fake model, Telegram and a webhook receiver', () => {
  let world: World
  let gateway: RunningGateway
  let options: Sh
  const api = (path: string, init?: RequestInit) => fetch(`${gateway.url}${path}`, init).then((r) => r.json() as Promise<any>)
  const post = (path: string, body: unknown) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

  beforeAll(async () => {
    // Telegram closed to strangers, as by default: the pairing examples need a stranger. An MCP server named
    // "files", as /api/status shows one, and a price, as /api/usage shows costs.
    world = await makeWorld({ openDms: false })
    Object.assign(world.config, { mcp: { servers: { files: stdioServer('files', { tools: ['echo'] }) } }, pricing: { 'fake/echo': { input: 0.15, output: 0.6 } } })
    writeConfig(world.home, world.config)
    gateway = await world.start()
    options = { home: world.home, port: gateway.port }
  })
  afterAll(async () => {
    await gateway?.stop()
    world?.stop()
  })

  test('GET /health, GET /api/status, GET /api/usage, GET /openapi.json', async () => {
    await curlBlock(block('`GET /health`', 'curl'), options)
    await waitFor(async () => (await api('/api/status')).mcp.files.state === 'running', { what: 'the MCP server' })
    const [status] = await curlBlock(block('`GET /api/status`', 'curl'), options)
    expect(status.channels.telegram).toEqual({ type: 'telegram', state: 'running' })
    expect(status.mcp.files).toEqual({ state: 'running', tools: ['files__echo'] })
    await curlBlock(block('`GET /api/usage`', 'curl'), options, async () => {
      // A row to show: one answered turn.
      await post('/api/agent', { message: 'count me', session: 'usage' })
    })
    const [step] = steps(block('`GET /openapi.json`', 'curl'))
    const { stdout } = await sh(step!.command, options)
    expect(JSON.parse(stdout.trimEnd().split('\n').slice(0, -1).join('\n')).openapi).toStartWith('3.1')
  })

  test('the error envelope is what a bad request gets', async () => {
    const shown = JSON.parse(block('API', '{ "error"'))
    // The example's message is the one a /api/message with an empty content gets.
    const response = await fetch(`${gateway.url}/api/message`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'telegram', chat_id: '1', content: '' }) })
    expect(response.status).toBe(400)
    expect(await response.json()).toEqual(shown)
  })

  test('POST /api/agent, plain and streamed', async () => {
    await curlBlock(block('`POST /api/agent`', 'curl -X POST'), options)
    const [stream] = steps(block('`POST /api/agent`', 'curl -N -X POST'))
    const { stdout } = await sh(stream!.command, options)
    expect(stdout).toContain('event: delta\ndata: {"text":"')
    const done = /event: done\ndata: (.*)\n/.exec(stdout)
    expect(JSON.parse(done![1]!)).toEqual({ reply: 'echo: Tell me a story', session: 'default', model: 'fake/echo' })
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('200')
  })

  const pythonWithOpenAi = (() => {
    const python = Bun.which('python3')
    return python && Bun.spawnSync([python, '-c', 'import openai']).exitCode === 0 ? python : null
  })()
  test.skipIf(!pythonWithOpenAi)("OpenAI's Python client, as written", async () => {
    const code = notRunHere('from openai import OpenAI').replaceAll('localhost:18790', `localhost:${gateway.port}`)
    const proc = Bun.spawn([pythonWithOpenAi!, '-c', code], { stdout: 'pipe', stderr: 'pipe' })
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()])
    expect({ stdout, stderr, exit: await proc.exited }).toEqual({ stdout: 'echo: Hello\n', stderr: '', exit: 0 })
  })

  test('GET /api/sessions, GET and DELETE /api/sessions/:key, and the tool call messages', async () => {
    // A turn with a tool call, in a session of its own: its messages have the fields the README shows.
    world.llm.queue.push({ toolCalls: [{ name: 'time', input: { timezone: 'Europe/Berlin' } }] }, { text: 'It is late.' })
    await post('/api/agent', { message: 'What time is it in Berlin?', session: 'tools' })
    const { session } = await api('/api/sessions/tools')
    const [call, result] = parseJsonBlock(block('`GET /api/sessions/:key`, `DELETE /api/sessions/:key`', '{"role":"assistant"')) as any[]
    const actualCall = session.messages.find((m: any) => m.tool_calls)
    const actualResult = session.messages.find((m: any) => m.tool_results)
    expect(Object.keys(actualCall).sort()).toEqual(expect.arrayContaining(Object.keys(call).sort()))
    expect(actualCall.tool_calls[0]).toEqual({ id: expect.any(String), name: 'time', input: { timezone: 'Europe/Berlin' } })
    expect(Object.keys(actualResult)).toEqual(expect.arrayContaining(Object.keys(result)))
    expect(Object.keys(actualResult.tool_results[0]).sort()).toEqual(Object.keys(result.tool_results[0]).sort())
    expect(Object.keys(actualResult.tool_results[0].output)).toEqual(expect.arrayContaining(Object.keys(result.tool_results[0].output)))

    // The "default" session the /api/agent examples use, made here too: this test needs no other to run first.
    await post('/api/agent', { message: 'What is 2+2?' })
    await curlBlock(block('`GET /api/sessions`', 'curl'), options)
    // The "default" session: shown, then deleted.
    await curlBlock(block('`GET /api/sessions/:key`, `DELETE /api/sessions/:key`', 'curl'), options)
    expect((await fetch(`${gateway.url}/api/sessions/default`)).status).toBe(404)
  })

  test('Session keys: the encoded key is the one shown, and the curl finds that conversation', async () => {
    const code = block('Session keys', 'key=$(node -p')
    const shownKey = /# (\S+)/.exec(code.split('\n')[0]!)![1]!
    const printed = await sh(`${code.split('\n')[0]!}\nprintf '%s' "$key"`, options)
    expect(printed.stdout).toBe(shownKey)
    const { message_id } = await post('/api/message', { channel: 'myapp', chat_id: 'room 7/ünï', content: 'hello from room 7' })
    await waitFor(async () => (await api(`/api/message/${message_id}`)).message.state === 'delivered', { what: 'the reply to room 7' })
    const { stdout } = await sh(code, options)
    const body = JSON.parse(stdout.trimEnd().split('\n').slice(0, -1).join('\n'))
    expect(body.session.key).toBe('myapp:room 7/ünï')
  })

  test('POST /api/message: the content is the chat\'s user message, the reply goes to the chat; GET /api/message/:id; /sync', async () => {
    const [accepted] = await curlBlock(block('`POST /api/message`', 'curl'), options)
    const sent = await waitFor(() => world.telegram.sent.find((m) => m.chat_id === '123456789' && m.text === 'echo: Hello from API!'), { what: 'the reply in the chat' })
    expect(sent).toBeTruthy()
    const { session } = await api('/api/sessions/telegram%3A123456789')
    expect(session.messages.map((m: any) => [m.role, m.content])).toEqual(expect.arrayContaining([['user', 'Hello from API!'], ['assistant', 'echo: Hello from API!']]))
    await waitFor(async () => (await api(`/api/message/${accepted.message_id}`)).message.state === 'delivered', { what: 'delivered' })
    await curlBlock(block('`GET /api/message/:id`', 'curl'), { ...options, subst: { 'msg_3f0c…': accepted.message_id } })
    const [synced] = await curlBlock(block('`POST /api/message/sync`', 'curl'), options)
    expect(synced.reply).toBe('echo: Hello and reply!')
  })

  test('GET /api/messages lists a failed message with its error', async () => {
    world.telegram.failures.set('sendMessage', [{ error_code: 400, description: 'Bad Request: chat not found' }])
    const { message_id } = await post('/api/message', { channel: 'telegram', chat_id: '404404', content: 'hello' })
    await waitFor(async () => (await api(`/api/message/${message_id}`)).message.state === 'failed', { what: 'the failed delivery' })
    const [listed] = await curlBlock(block('`GET /api/messages`', 'curl'), options)
    expect(listed.messages[0]).toMatchObject({ id: message_id, state: 'failed', content: 'hello', error: expect.any(String) })
  })

  test('POST /api/send delivers the text verbatim, without the agent', async () => {
    const calls = world.llm.calls.length
    const [sent] = await curlBlock(block('`POST /api/send`', 'curl'), options)
    expect(world.telegram.sent.find((m) => m.message_id === Number(sent.message_id))).toMatchObject({ chat_id: '123456789', text: 'Dinner is ready' })
    expect(world.llm.calls.length).toBe(calls)
  })

  test('the cron examples, in order, with the ids they make', async () => {
    const bodies = await curlBlock(block('Cron jobs: `/api/cron`', 'curl'), options, async (index, subst, bodies) => {
      if (index === 1) subst['job_9c1…'] = bodies[0].job.id
      // The list and runs examples show a finished run.
      if (index === 2) await waitFor(async () => (await api(`/api/cron/${subst['job_9c1…']}/runs`)).runs[0]?.finished_at, { what: 'the run to finish' })
    })
    expect(bodies[1].run_id).toBeString()
    await waitFor(() => world.telegram.sent.find((m) => m.chat_id === '123456789' && m.text === 'echo: Summarise my day'), { what: 'the job\'s reply in the chat' })
    expect(bodies.at(-1)).toMatchObject({ status: 'ok', description: 'At 09:00, only on Monday (Europe/Berlin)', timezone: 'Europe/Berlin' })
  })

  test('pairing: the API examples, then the CLI examples, with a stranger called alice', async () => {
    const alice = { id: 123456789, username: 'alice' }
    const codeFrom = async () => {
      const before = world.telegram.sent.length
      world.telegram.pushMessage(alice.id, 'hello?', alice)
      const reply = await waitFor(() => world.telegram.sent.slice(before).find((m) => m.chat_id === String(alice.id) && m.text.includes('pairing code')), { what: 'the pairing code' })
      return /pairing code: (\S+) /.exec(reply.text)![1]!
    }
    const code = await codeFrom()
    const [list, approve, revoke] = await curlBlock(block('Pairing: `/api/pairing`', 'curl'), { ...options, subst: { 'K7QM-WX3D': code } })
    expect(list.requests[0]).toMatchObject({ code, sender_id: '123456789', username: 'alice' })
    expect(approve.approval.sender_id).toBe('123456789')
    expect(revoke.revoked).toHaveLength(1)

    // Revoked: the next message brings a new code, for the CLI examples (which open the database directly).
    const second = await codeFrom()
    for (const step of steps(block('Channels', 'xopcbot pairing list'))) {
      const result = await sh(step.command, { ...options, subst: { 'K7QM-WX3D': second } })
      expect({ command: step.command, exit: result.exit }).toEqual({ command: step.command, exit: 0 })
      const normal = result.stdout.trimEnd().replaceAll(second, 'K7QM-WX3D').replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/, '2026-03-01 13:00:00Z')
      expect(normal).toBe(step.shows)
    }
  })
})

describe('examples that need the token, on a gateway with one (and a Telegram it cannot reach)', () => {
  let world: World
  let gateway: RunningGateway
  let options: Sh
  beforeAll(async () => {
    world = await makeWorld({ telegramListening: false, env: { XOPCBOT_TEST_CHANNEL_BACKOFF_MS: '50,200' } })
    world.config.gateway.auth = { token: TOKEN }
    writeConfig(world.home, world.config)
    gateway = await world.start()
    options = { home: world.home, port: gateway.port, env: { TOKEN, XOPCBOT_GATEWAY_TOKEN: TOKEN } }
  })
  afterAll(async () => {
    await gateway?.stop()
    world?.stop()
  })

  test('GET /api/status shows a retrying channel as the README does', async () => {
    const shown = parseJsonBlock(block('`GET /api/status`', '"telegram": {')) as any
    const channel = await waitFor(
      async () => {
        const status = await (await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()
        return (status as any).channels.telegram.state === 'retrying' ? (status as any).channels.telegram : null
      },
      { what: 'telegram retrying' },
    )
    expect(Object.keys(channel).sort()).toEqual(Object.keys(shown.telegram).sort())
  })

  test('POST /api/config/reload, GET /api/logs, GET /api/logs/stream, GET /metrics, a 405, and the Authentication curl', async () => {
    await curlBlock(block('`POST /api/config/reload`', 'curl'), options)
    // The logs example asks for Telegram's warnings: there are some once a connection failed.
    await waitFor(async () => (await fetch(`${gateway.url}/api/logs?level=warn&q=telegram`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json() as any)).logs.length > 0, { what: 'a telegram warning' })
    await curlBlock(block('`GET /api/logs`', 'curl'), options)

    const metrics = steps(block('`GET /metrics`', 'curl'))[0]!
    const { stdout } = await sh(metrics.command, options)
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('200')
    for (const name of metrics.shows.split('\n').map((l) => /^(\w+)\{/.exec(l)![1]!)) expect(stdout).toContain(`# TYPE ${name} `)

    const stream = shBackground(block('`GET /api/logs/stream`', 'curl'), options)
    try {
      await waitFor(() => stream.out().includes('event: log\ndata: {'), { what: 'a log event' })
      expect(stream.out()).toStartWith(': ready\n')
      const data = /event: log\ndata: (.*)\n/.exec(stream.out())![1]!
      expect(Object.keys(JSON.parse(data))).toEqual(expect.arrayContaining(['ts', 'level', 'tag', 'msg']))
    } finally {
      stream.interrupt()
      await stream.done()
    }

    // A method a path does not take: the status line, the Allow header and the body, as shown.
    const [method] = steps(block('API', 'curl -i -X PUT'))
    const answer = (await sh(method!.command, options)).stdout.replaceAll('\r', '').trimEnd().split('\n')
    const [statusLine, allow, body] = method!.shows.split('\n')
    expect(answer[0]).toBe(statusLine!)
    expect(answer.map((l) => l.toLowerCase())).toContain(allow!.toLowerCase())
    expect(JSON.parse(answer.at(-2)!)).toEqual(JSON.parse(body!))
    expect(answer.at(-1)).toBe('405')

    await curlBlock(block('Authentication', 'curl -H "Authorization: Bearer $XOPCBOT_GATEWAY_TOKEN"'), options)
    // Without the token the same request is refused.
    expect((await fetch(`${gateway.url}/api/status`)).status).toBe(401)
  })
})

describe('CLI examples, from source on a temporary HOME', () => {
  test('config schema: the file it writes is what an editor needs, and the config that names it is valid', async () => {
    const home = homeWithConfig({ gateway: { port: 18790 } })
    const result = await sh(block('Changing the config from the command line', 'xopcbot config schema >'), { home, port: 18790 })
    expect({ exit: result.exit, stderr: result.stderr }).toEqual({ exit: 0, stderr: '' })
    const schema = JSON.parse(readFileSync(join(home, '.xopcbot', 'config.schema.json'), 'utf8'))
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['gateway', 'agent', 'channels']))
    // "and at the top of config.json: "$schema": "./config.schema.json","
    writeConfig(home, '{\n  "$schema": "./config.schema.json",\n  "gateway": { "port": 18790 }\n}\n')
    const validate = await sh('xopcbot config validate', { home, port: 18790 })
    expect(validate.stdout.trim()).toBe(`config ok: ${configPathOf(home)}`)
  })

  test('backup, then stop, restore and start again', async () => {
    const port = await freePort()
    const home = homeWithConfig({ gateway: { host: '127.0.0.1', port, auth: { token: TOKEN } }, providers: { openai: { apiKey: 'sk-readme-example-0123456789' } } })
    const running = await startGateway({ home, port })
    let restarted: ReturnType<typeof shBackground> | undefined
    try {
      const [backup, again] = steps(block('Backup and restore', 'xopcbot backup'))
      const made = await sh(backup!.command, { home, port })
      expect({ exit: made.exit, stderr: made.stderr }).toEqual({ exit: 0, stderr: expect.any(String) })
      const path = /Backup written: (\S+) /.exec(made.stdout)![1]!
      const normal = made.stdout
        .trimEnd()
        .replaceAll(home, '/home/me')
        .replace(/\d{8}T\d{6}Z/g, '20261130T053916Z')
        .replace(/\(\d+(\.\d+)? (B|KiB|MiB)\)/, '(4.2 MiB)')
        .replace(/schema \d+/, 'schema 6')
      expect(normal).toBe(backup!.shows)
      // Stop, restore, and the gateway again in the foreground: it serves what the backup held.
      restarted = shBackground(again!.command, { home, port, subst: { [readme.match(/\/home\/me\/\.xopcbot\/backups\/xopcbot-\d{8}T\d{6}Z\.tar\.gz/)![0]]: path } })
      await running.proc.exited
      await waitFor(
        async () => {
          if (restarted!.proc.exitCode !== null) throw new Error(`exited: ${restarted!.out()}`)
          const lock = lockOf(home)
          return lock !== null && lock.pid !== running.proc.pid && (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false))
        },
        { what: 'the gateway after the restore', timeoutMs: 20_000 },
      )
      expect(restarted.out()).toContain('Gateway is running')
    } finally {
      restarted?.interrupt()
      await restarted?.done()
      await running.stop()
    }
  })

  test.skipIf(!Bun.which('openssl'))('a token file made with openssl, then gateway --token-file', async () => {
    const home = tempHome()
    const port = await freePort()
    const code = block('Authentication', '(umask 077 && openssl rand')
    const run = shBackground(code, { home, port, env: { XOPCBOT_GATEWAY_PORT: String(port), XOPCBOT_GATEWAY_HOST: '127.0.0.1' } })
    try {
      await waitFor(
        async () => {
          if (run.proc.exitCode !== null) throw new Error(`exited: ${run.out()}`)
          return fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)
        },
        { what: 'the gateway with the token file', timeoutMs: 20_000 },
      )
      const file = join(home, 'api-token')
      expect(statSync(file).mode & 0o777).toBe(0o600)
      const token = readFileSync(file, 'utf8').trim()
      expect(token).toMatch(/^[0-9a-f]{64}$/)
      expect((await fetch(`http://127.0.0.1:${port}/api/status`, { headers: { authorization: 'Bearer wrong-token-0123' } })).status).toBe(401)
      expect((await fetch(`http://127.0.0.1:${port}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    } finally {
      run.interrupt()
      await run.done()
    }
    expect(run.out()).not.toContain(readFileSync(join(home, 'api-token'), 'utf8').trim())
  })
})
