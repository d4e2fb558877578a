import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { once } from 'node:events'
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { resolvePaths } from '../src/config/paths'
import { checkClock } from '../src/ops/doctor/network'
import { checkService } from '../src/ops/doctor/service'
import { serviceContext, serviceManager } from '../src/service'
import type { ServiceSpec } from '../src/service/types'
import { openDatabase } from '../src/storage/db'
import { startFakeLlm } from './fakes/llm'
import { startFakeTelegram } from './fakes/telegram'
import { startWebhookReceiver } from './fakes/webhook-receiver'
import { configPathOf, freePort, homeWithConfig, lockPathOf, ROOT, runCli, startGateway, tempHome } from './helpers/gateway'

setDefaultTimeout(20_000)

const API_KEY = 'sk-doctor-key-0123456789abcdef'
const llm = startFakeLlm()
llm.apiKey = API_KEY
llm.models = ['echo-1', 'other-1']
const telegram = startFakeTelegram({ token: '424242:DOCTOR-token-abcdefghijklmnopq' })
afterAll(() => {
  llm.stop()
  telegram.stop()
})

let port: number
beforeAll(async () => {
  port = await freePort()
})

/** A complete config against the fakes; `change` edits it before it is written. */
function setup(change: (config: any) => void = () => {}): { home: string; config: string; db: string } {
  const config: any = {
    gateway: { host: '127.0.0.1', port },
    agent: { model: 'fake/echo-1', maxRetries: 0 },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1`, apiKey: API_KEY } },
    channels: { telegram: { enabled: true, token: telegram.token, apiRoot: telegram.url } },
  }
  change(config)
  const home = homeWithConfig(config)
  const path = configPathOf(home)
  chmodSync(path, 0o600)
  chmodSync(join(home, '.xopcbot'), 0o700)
  const db = join(home, '.xopcbot', 'xopcbot.db')
  openDatabase(db).close()
  return { home, config: path, db }
}

const doctor = (home: string, args: string[] = []) => runCli(['doctor', ...args], { home })

/** The line of check `id` (its symbol and summary), and the fix under it if any. */
function lineOf(stdout: string, id: string): { symbol: string; summary: string; fix?: string } {
  const lines = stdout.split('\n')
  const index = lines.findIndex((line) => new RegExp(`^. ${id.replace('.', '\\.')} +`).test(line))
  if (index < 0) throw new Error(`no line for ${id} in:\n${stdout}`)
  const line = lines[index]!
  const fix = /^\s+→ (.*)$/.exec(lines[index + 1] ?? '')?.[1]
  return { symbol: line[0]!, summary: line.slice(line.indexOf(id) + id.length).trim(), ...(fix ? { fix } : {}) }
}

/** Neither the API key nor the bot token appears anywhere in what the command printed. */
function expectNoSecrets(result: { stdout: string; stderr: string }, ...secrets: string[]) {
  for (const secret of [API_KEY, telegram.token, ...secrets]) {
    expect(result.stdout).not.toContain(secret)
    expect(result.stderr).not.toContain(secret)
  }
}

describe('xopcbot doctor', () => {
  test('a healthy setup with a stopped gateway: exit 0 and every check passes', async () => {
    const { home, config, db } = setup()
    const result = await doctor(home)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(lineOf(result.stdout, 'config')).toEqual({ symbol: '✓', summary: `${config} is valid` })
    expect(lineOf(result.stdout, 'config.mode')).toEqual({ symbol: '✓', summary: '0600: only you can read it' })
    expect(lineOf(result.stdout, 'dataDir').symbol).toBe('✓')
    expect(lineOf(result.stdout, 'database').summary).toContain(`${db} passes its integrity check`)
    expect(lineOf(result.stdout, 'lock')).toEqual({ symbol: '✓', summary: 'no lock: no gateway runs on this config' })
    expect(lineOf(result.stdout, 'port')).toEqual({ symbol: '✓', summary: `${port} on 127.0.0.1 is free for the gateway` })
    expect(lineOf(result.stdout, 'provider.fake')).toEqual({ symbol: '✓', summary: `${llm.url} accepted the key (2 models listed)` })
    expect(lineOf(result.stdout, 'channel.telegram')).toEqual({ symbol: '✓', summary: 'telegram: token valid for @fake_bot (polling)' })
    expect(lineOf(result.stdout, 'clock').summary).toMatch(/^within \d s of http:\/\/127\.0\.0\.1:\d+$/)
    expect(result.stdout).not.toMatch(/^✗/m)
    expectNoSecrets(result)
  })

  test('a config file others can read: ✗ with the chmod to run, exit 1', async () => {
    const { home, config } = setup()
    chmodSync(config, 0o644)
    const result = await doctor(home)
    expect(result.code).toBe(1)
    expect(lineOf(result.stdout, 'config.mode')).toEqual({
      symbol: '✗',
      summary: `${config} has mode 0644: other users can read it, and it holds the API token and keys`,
      fix: `run: chmod 600 ${config}`,
    })
  })

  test('an API key the provider refuses: ✗ provider, and the key is never printed', async () => {
    const wrong = 'sk-wrong-key-9876543210zyxw'
    const { home, config } = setup((c) => (c.providers.fake.apiKey = wrong))
    const result = await doctor(home)
    expect(result.code).toBe(1)
    const line = lineOf(result.stdout, 'provider.fake')
    expect(line.symbol).toBe('✗')
    expect(line.summary).toBe(`${llm.url} refused the API key (HTTP 401)`)
    expect(line.fix).toBe(`set a valid key in providers.fake.apiKey in ${config}`)
    expectNoSecrets(result, wrong)
  })

  test('a provider that cannot be reached: ✗ provider; a password or query key in its baseURL is never printed', async () => {
    const closed = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    const port = closed.port
    closed.stop(true)
    const { home } = setup((c) => (c.providers.fake.baseURL = `http://proxyuser:pw-in-url-secret@127.0.0.1:${port}/v1?key=query-key-secret`))
    const result = await doctor(home)
    expect(result.code).toBe(1)
    const line = lineOf(result.stdout, 'provider.fake')
    expect(line.symbol).toBe('✗')
    expect(line.fix).toBe(`check the network, and the baseURL of providers.fake (http://127.0.0.1:${port}/v1)`)
    expectNoSecrets(result, 'pw-in-url-secret', 'query-key-secret')
  })

  test('a Telegram token the Bot API refuses: ✗ channel, and the token is never printed', async () => {
    const wrong = '999999:WRONG-token-zyxwvutsrqponmlk'
    const { home } = setup((c) => (c.channels.telegram.token = wrong))
    const result = await doctor(home)
    expect(result.code).toBe(1)
    const line = lineOf(result.stdout, 'channel.telegram')
    expect(line.symbol).toBe('✗')
    expect(line.summary).toBe('telegram: the bot token was refused (HTTP 401: Unauthorized)')
    expect(line.fix).toContain('@BotFather')
    expectNoSecrets(result, wrong)
  })

  test('with the gateway running: the port is held by our gateway, its database is read beside it, its channel state is shown', async () => {
    const { home, db } = setup()
    const gateway = await startGateway({ home, port })
    try {
      const result = await doctor(home)
      expect(result.code).toBe(0)
      const pid = gateway.proc.pid
      expect(lineOf(result.stdout, 'port')).toEqual({ symbol: '✓', summary: `${port} is held by our gateway (pid ${pid}), which answers on http://127.0.0.1:${port}/health` })
      expect(lineOf(result.stdout, 'lock').summary).toStartWith(`held by the running gateway (pid ${pid}, since `)
      expect(lineOf(result.stdout, 'database').summary).toContain(`${db} passes its integrity check`)
      expect(lineOf(result.stdout, 'channel.telegram')).toEqual({ symbol: '✓', summary: 'telegram: token valid for @fake_bot (polling); running in the gateway' })
      expectNoSecrets(result)
    } finally {
      await gateway.stop()
    }
  })

  test('a stale lock is ⚠ with the file to remove; a port another program holds is ✗ naming it', async () => {
    const { home } = setup()
    const gone = Bun.spawn(['true'])
    await gone.exited
    const lock = lockPathOf(home)
    mkdirSync(dirname(lock), { recursive: true })
    const info = { pid: gone.pid, createdAt: new Date().toISOString(), configPath: configPathOf(home), startTime: null, host: '127.0.0.1', port, version: '0.0.0', execPath: process.execPath, argv: [], cwd: home, nonce: 'n0nce', supervised: false, allowSigusr1Restart: false, respawn: false, restarts: 0 }
    writeFileSync(lock, JSON.stringify(info))
    const server = createServer().listen(port, '127.0.0.1')
    await once(server, 'listening')
    try {
      const result = await doctor(home)
      expect(result.code).toBe(1)
      expect(lineOf(result.stdout, 'lock')).toEqual({ symbol: '⚠', summary: `stale: pid ${gone.pid} is gone; the next start removes it`, fix: `run: rm ${lock}` })
      const line = lineOf(result.stdout, 'port')
      expect(line.symbol).toBe('✗')
      expect(line.summary).toStartWith(`${port} is in use (pid ${process.pid}: `)
      expect(line.fix).toBe(`stop that process, or set gateway.port in ${configPathOf(home)} to a free port`)
      expect(existsSync(lock)).toBe(true)
    } finally {
      server.close()
    }
  })

  test('a damaged database and a file that is not one: ✗ database with the command that moves it aside', async () => {
    const { home, db } = setup()
    // A real database with pages in the middle, some of them overwritten.
    const raw = openDatabase(db)
    const insert = raw.query('INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)')
    raw.transaction(() => {
      for (let n = 0; n < 1000; n++) insert.run(`key-${n}`, 'x'.repeat(200), 'now')
    })()
    raw.close()
    const pages = Math.floor(statSync(db).size / 4096)
    const fd = openSync(db, 'r+')
    for (let page = Math.floor(pages / 2); page < Math.floor(pages / 2) + 3; page++) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, page * 4096)
    closeSync(fd)
    const damaged = await doctor(home)
    expect(damaged.code).toBe(1)
    const line = lineOf(damaged.stdout, 'database')
    expect(line.symbol).toBe('✗')
    expect(line.summary).toMatch(new RegExp(`^${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged`))
    expect(line.fix).toBe(`restore it from a backup, or run: mv ${db} ${db}.damaged`)

    writeFileSync(db, 'this is not a database '.repeat(100))
    const garbage = await doctor(home)
    expect(garbage.code).toBe(1)
    expect(lineOf(garbage.stdout, 'database')).toEqual({ symbol: '✗', summary: `${db} is not an SQLite database`, fix: `restore it from a backup, or run: mv ${db} ${db}.damaged` })
  })

  test('a webhook channel: a signed ping its receiver can verify; a receiver that cannot be reached is ✗', async () => {
    const secret = 'doctor-webhook-secret-0123456789'
    const receiver = startWebhookReceiver(secret)
    try {
      const { home } = setup((c) => (c.channels.app = { type: 'webhook', url: receiver.url, secret }))
      const result = await doctor(home)
      expect(result.code).toBe(0)
      expect(lineOf(result.stdout, 'channel.app')).toEqual({ symbol: '✓', summary: `webhook: replies go to ${new URL(receiver.url).origin} (signed, 5 attempts): the receiver answered a signed ping (HTTP 200)` })
      expect(receiver.received).toHaveLength(1)
      expect(receiver.received[0]).toMatchObject({ body: { event: 'ping' }, signatureValid: true })
      expectNoSecrets(result, secret)
    } finally {
      receiver.stop()
    }
    const closed = await freePort()
    const { home } = setup((c) => (c.channels.app = { type: 'webhook', url: `http://127.0.0.1:${closed}/hook`, secret }))
    const result = await doctor(home)
    expect(result.code).toBe(1)
    const line = lineOf(result.stdout, 'channel.app')
    expect(line.symbol).toBe('✗')
    expect(line.summary).toContain(`cannot reach http://127.0.0.1:${closed}`)
    expect(line.fix).toBe('check channels.app.url and that the receiver runs')
  })

  test('--json: the same checks as the text, in the documented shape', async () => {
    const { home } = setup((c) => (c.providers.fake.apiKey = 'sk-wrong-key-9876543210zyxw'))
    // One after the other: both probe the port by listening on it.
    const json = await doctor(home, ['--json'])
    const text = await doctor(home)
    expect(json.code).toBe(1)
    const report = z
      .strictObject({
        ok: z.boolean(),
        checks: z.array(z.strictObject({ id: z.string(), status: z.enum(['ok', 'warn', 'fail']), summary: z.string(), fix: z.string().optional() })),
      })
      .parse(JSON.parse(json.stdout))
    expect(report.ok).toBe(false)
    const symbols = { ok: ['✓', '–'], warn: ['⚠'], fail: ['✗'] }
    for (const check of report.checks) {
      const line = lineOf(text.stdout, check.id)
      expect(symbols[check.status]).toContain(line.symbol)
      // The clock is judged by whichever fake answered fastest, which may differ between the two runs.
      if (check.id === 'clock') expect(line.summary.replace(/\d+$/, '')).toBe(check.summary.replace(/\d+$/, ''))
      else expect(line.summary).toBe(check.summary)
      expect(line.fix).toBe(check.fix)
      if (check.status !== 'ok') expect(check.fix).toBeString()
    }
    expect(report.checks.find((c) => c.id === 'provider.fake')?.status).toBe('fail')
    expect(report.checks.map((c) => c.id)).toEqual(expect.arrayContaining(['config', 'config.mode', 'dataDir', 'database', 'lock', 'port', 'service', 'provider.fake', 'channel.telegram', 'clock']))
  })

  test('bad flags are usage errors; --help shows an example', async () => {
    const bad = await runCli(['doctor', '--timeout', 'soon'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--timeout: must be a whole number of milliseconds')
    const help = await runCli(['doctor', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('xopcbot doctor --json')
  })
})

describe('the clock check', () => {
  const sample = (skewMs: number, roundTripMs = 20) => ({ origin: 'https://api.example.com', serverMs: 1_000_000_000_000 + skewMs, localMs: 1_000_000_000_500, roundTripMs })

  test('a few seconds are fine, over 30 s is a warning, over 5 minutes a failure', () => {
    expect(checkClock([sample(2_000)])).toMatchObject({ status: 'ok', summary: 'within 2 s of https://api.example.com' })
    expect(checkClock([sample(45_000)])).toMatchObject({ status: 'warn', summary: 'the local clock is 45 s behind https://api.example.com' })
    expect(checkClock([sample(-400_000)])).toMatchObject({ status: 'fail' })
    expect(checkClock([sample(-400_000)]).summary).toStartWith('the local clock is 400 s ahead of https://api.example.com')
  })

  test('the exchange with the shortest round trip decides; no sample, no judgement', () => {
    expect(checkClock([sample(400_000, 900), sample(1_000, 10)]).status).toBe('ok')
    expect(checkClock([])).toMatchObject({ status: 'ok', skipped: true })
  })
})

describe('the service check (launchd, through the recording fake launchctl of tests/fakes/bin)', () => {
  const originalPath = process.env.PATH
  let home: string
  beforeEach(() => {
    home = tempHome()
    const dir = mkdtempSync(join(tmpdir(), 'xopcbot-fake-manager-'))
    process.env.PATH = `${join(ROOT, 'tests/fakes/bin')}:${originalPath}`
    process.env.FAKE_LOG = join(dir, 'calls.log')
    process.env.FAKE_DIR = dir
  })
  afterEach(() => {
    process.env.PATH = originalPath
  })

  const ctx = () => serviceContext({ platform: 'darwin', homeDir: home, uid: 501, user: 'me' })
  const paths = () => resolvePaths({ env: { HOME: home }, homeDir: home })
  const install = async (program: string) => {
    const p = paths()
    const spec: ServiceSpec = {
      name: 'ai.xopcbot.gateway',
      description: 'xopcbot gateway',
      program,
      args: ['gateway', '--config', p.configPath],
      workingDirectory: home,
      env: {},
      stopTimeoutMs: 5000,
      logDir: join(home, 'logs'),
    }
    await serviceManager(ctx()).install(spec, { start: true })
  }

  test('not installed: ⚠ with the install command', async () => {
    const { service, linger } = await checkService(ctx(), paths(), null)
    expect(service).toMatchObject({ status: 'warn', summary: 'not installed (ai.xopcbot.gateway): the gateway runs only while you keep it running', fix: 'run: xopcbot gateway install' })
    expect(linger).toBeNull()
  })

  test('installed and running its program: ✓', async () => {
    await install(process.execPath)
    const { service } = await checkService(ctx(), paths(), null)
    expect(service.status).toBe('ok')
    expect(service.summary).toBe(`ai.xopcbot.gateway (${join(home, 'Library/LaunchAgents/ai.xopcbot.gateway.plist')}): running (pid 4242), runs ${process.execPath}`)
  })

  test('pointing at a program that is gone: ✗ with the command that re-points it', async () => {
    await install(join(home, 'bin', 'xopcbot-removed'))
    const { service } = await checkService(ctx(), paths(), null)
    expect(service).toMatchObject({
      status: 'fail',
      summary: `ai.xopcbot.gateway is installed, but its program ${join(home, 'bin', 'xopcbot-removed')} does not exist or is not executable`,
      fix: 'run: xopcbot gateway install (it updates the entry in place)',
    })
  })
})
