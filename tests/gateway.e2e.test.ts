import { describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { childEnv, freePort, fromSource, homeWithConfig, runCli, startGateway, tempHome, writeConfig } from './helpers/gateway'
import { json } from './helpers/http'
import { waitFor } from './helpers/wait'

const readLog = (home: string) =>
  readFileSync(join(home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))

describe('xopcbot gateway (from source)', () => {
  test('starts on embedded defaults, prints the banner, serves, logs each request, stops on SIGTERM with exit 0', async () => {
    const gateway = await startGateway()
    try {
      const health = await fetch(`${gateway.url}/health`)
      expect(health.status).toBe(200)
      const body = await json(health)
      expect(body.status).toBe('healthy')
      expect(typeof body.uptime).toBe('number')

      const status = await fetch(`http://localhost:${gateway.port}/api/status`)
      expect(status.status).toBe(200)
      const requestId = status.headers.get('x-request-id')
      expect((await json(status)).pid).toBe(gateway.proc.pid)

      const out = gateway.output()
      expect(out).toContain('✅ Gateway is running')
      expect(out).toContain(`Port: ${gateway.port}`)
      expect(out).toContain(`URL: http://127.0.0.1:${gateway.port}`)
      expect(out).toContain('Press Ctrl+C to stop')

      expect(await gateway.stop('SIGTERM')).toBe(0)
      const lines = readLog(gateway.home)
      expect(lines.find((l) => l.requestId === requestId)).toMatchObject({ tag: 'http', path: '/api/status', status: 200 })
      expect(lines.at(-1).msg).toBe('gateway stopped')
      const db = join(gateway.home, '.xopcbot', 'xopcbot.db')
      expect(statSync(db).mode & 0o777).toBe(0o600)
      expect(statSync(join(gateway.home, '.xopcbot')).mode & 0o777).toBe(0o700)
      expect(existsSync(join(gateway.home, '.xopcbot', 'config.json'))).toBe(false)
    } finally {
      gateway.proc.kill('SIGKILL')
    }
  })

  test('Ctrl+C (SIGINT) stops it gracefully too', async () => {
    const gateway = await startGateway()
    expect(await gateway.stop('SIGINT')).toBe(0)
    expect(gateway.output()).toContain('gateway stopped')
  })

  test('a taken port fails with the documented message and exit 1', async () => {
    const first = await startGateway()
    try {
      const second = await runCli(['gateway', '--host', '127.0.0.1', '--port', String(first.port)])
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(`❌ Port ${first.port} is already in use. Use --force to kill existing process.`)
      expect((await fetch(`${first.url}/health`)).status).toBe(200)
    } finally {
      expect(await first.stop()).toBe(0)
    }
  })

  test('--token protects /api, is masked in the banner and never logged', async () => {
    const token = 'e2e-secret-token-0123456789abcdef'
    const gateway = await startGateway({ args: ['--token', token] })
    try {
      expect((await fetch(`${gateway.url}/api/status`)).status).toBe(401)
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
      expect(gateway.output()).toContain('Token: e2e-secr...89abcdef')
    } finally {
      expect(await gateway.stop()).toBe(0)
    }
    expect(gateway.output()).not.toContain(token)
    expect(readFileSync(join(gateway.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')).not.toContain(token)
  })

  test('settings come from flag > environment > config file > default', async () => {
    const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()]
    const home = homeWithConfig({ gateway: { host: '127.0.0.1', port: filePort } })

    const start = async (args: string[], env: Record<string, string>, port: number) => {
      const proc = Bun.spawn([...fromSource, 'gateway', ...args], { env: childEnv(home, env), stdout: 'pipe', stderr: 'pipe' })
      try {
        await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, { what: `port ${port}` })
      } finally {
        proc.kill('SIGTERM')
        expect(await proc.exited).toBe(0)
      }
    }
    await start([], {}, filePort)
    await start([], { XOPCBOT_GATEWAY_PORT: String(envPort) }, envPort)
    await start(['--port', String(flagPort)], { XOPCBOT_GATEWAY_PORT: String(envPort) }, flagPort)
  })

  test('--config and XOPCBOT_CONFIG choose the config; the data dir follows it', async () => {
    const home = tempHome()
    const port = await freePort()
    const dir = join(home, 'elsewhere')
    mkdirSync(dir)
    writeFileSync(join(dir, 'my.json'), JSON.stringify({ gateway: { host: '127.0.0.1', port } }))
    for (const [args, env] of [
      [['--config', join(dir, 'my.json')], {}],
      [[], { XOPCBOT_CONFIG: join(dir, 'my.json') }],
    ] as const) {
      const proc = Bun.spawn([...fromSource, 'gateway', ...args], { env: childEnv(home, env), stdout: 'pipe', stderr: 'pipe' })
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, { what: 'gateway on the configured port' })
      proc.kill('SIGTERM')
      expect(await proc.exited).toBe(0)
    }
    expect(existsSync(join(dir, 'xopcbot.db'))).toBe(true)
    expect(existsSync(join(dir, 'logs', 'gateway.log'))).toBe(true)
  })
})

describe('bad configuration stops the program with exit 78 and leaves the file as it was', () => {
  const cases: [string, string, string][] = [
    ['bad JSON', '{"gateway": {"port": 18790,,}', 'not valid JSON'],
    ['wrong type', '{"gateway": {"port": "high"}}', 'gateway.port: must be a whole number'],
    ['unknown key', '{"gateway": {"port": 18790, "hots": "x"}}', 'gateway.hots: unknown key'],
    ['missing ${VAR}', '{"gateway": {"auth": {"token": "${XOPCBOT_TEST_UNSET_VAR}"}}}', 'gateway.auth.token: environment variable XOPCBOT_TEST_UNSET_VAR is not set'],
  ]
  for (const [name, text, message] of cases) {
    test(name, async () => {
      const home = tempHome()
      const path = writeConfig(home, text)
      const before = statSync(path)
      const result = await runCli(['gateway', '--port', String(await freePort())], { home })
      expect(result.code).toBe(78)
      expect(result.stderr).toContain(path)
      expect(result.stderr).toContain(message)
      expect(result.stderr).not.toContain('    at ')
      expect(readFileSync(path, 'utf8')).toBe(text)
      expect(statSync(path).mtimeMs).toBe(before.mtimeMs)
      expect(existsSync(join(home, '.xopcbot', 'xopcbot.db'))).toBe(false)
    })
  }

  test('a bad environment value is a config error too', async () => {
    const result = await runCli(['gateway'], { env: { XOPCBOT_GATEWAY_PORT: 'eighty' } })
    expect(result.code).toBe(78)
    expect(result.stderr).toContain('XOPCBOT_GATEWAY_PORT')
  })
})

describe('command line', () => {
  test('--version prints the package version', async () => {
    const { version } = (await Bun.file(join(import.meta.dir, '..', 'package.json')).json()) as { version: string }
    const result = await runCli(['--version'])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(version)
  })

  test('--help lists the gateway command and its options', async () => {
    const root = await runCli(['--help'])
    expect(root.code).toBe(0)
    expect(root.stdout).toContain('gateway')
    const gateway = await runCli(['gateway', '--help'])
    expect(gateway.code).toBe(0)
    for (const flag of ['--port', '--host', '--token', '--config']) expect(gateway.stdout).toContain(flag)
  })

  const usage: [string[], string][] = [
    [['gateway', '--port', 'abc'], '--port: must be a whole number from 1 to 65535 (got "abc")'],
    [['gateway', '--port', '70000'], '--port: must be from 1 to 65535 (got "70000")'],
    [['gateway', '--port'], '--port: needs a value'],
    [['gateway', '--host', 'bad host!'], '--host: must be an IP address or a host name'],
    [['gateway', '--token', 'short'], '--token: must be at least 8 characters'],
    [['gateway', '--frobnicate'], 'unknown option --frobnicate'],
    [['gateway', 'stray'], 'unexpected argument "stray"'],
    [['no-such-command'], 'unknown command "no-such-command"'],
  ]
  for (const [args, message] of usage) {
    test(`usage error: xopcbot ${args.join(' ')} → exit 2`, async () => {
      const result = await runCli(args)
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(message)
      expect(result.stderr).not.toContain('    at ')
    })
  }
})
