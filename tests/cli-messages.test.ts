import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isSameProcessAlive } from '../src/lifecycle/process'
import { readCommandLine } from '../src/lifecycle/command-line'
import { withoutOneShotArgs } from '../src/lifecycle/lock'
import { childEnv, configPathOf, ENTRY, freePort, fromSource, homeWithConfig, lockOf, ROOT, runCli, startGateway, tempHome, writeConfig } from './helpers/gateway'
import { healthy } from './helpers/http'
import { startUserManager } from './helpers/systemd'
import { waitFor } from './helpers/wait'

// What a user reads from the CLI: flags named as flags, lists of valid values, one URL for one gateway.

const TOKEN = 'cli-messages-token-0123456789'
const lineOf = (text: string, prefix: string) => text.split('\n').find((line) => line.startsWith(prefix))

describe('cron add speaks in flags, not API fields', () => {
  test('--mode direct without a target, and half a target: usage errors naming --channel and --chat-id', async () => {
    const home = tempHome()
    const direct = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'x', '--mode', 'direct'], { home })
    expect(direct.code).toBe(2)
    expect(direct.stderr).toContain('--channel and --chat-id are required with --mode direct')
    expect(direct.stderr).not.toContain('chat_id')
    const half = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'x', '--channel', 'tg'], { home })
    expect(half.code).toBe(2)
    expect(half.stderr).toContain('--chat-id is required with --channel')
    const otherHalf = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'x', '--chat-id', '42'], { home })
    expect(otherHalf.code).toBe(2)
    expect(otherHalf.stderr).toContain('--channel is required with --chat-id')
  })

  test('what the gateway refuses is named by the flag that set it', async () => {
    const home = homeWithConfig({ gateway: { auth: { token: TOKEN } } })
    const gateway = await startGateway({ home })
    try {
      const channel = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'x', '--channel', 'nope', '--chat-id', '42'], { home })
      expect(channel.code).toBe(1)
      expect(channel.stderr).toContain('--channel: no enabled channel "nope"')
      const schedule = await runCli(['cron', 'add', '--schedule', '0 0 31 4 *', '--message', 'x'], { home })
      expect(schedule.code).toBe(1)
      expect(schedule.stderr).toContain('--schedule: never fires')
      const zone = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'x', '--timezone', 'Mars/Olympus'], { home })
      expect(zone.code).toBe(1)
      expect(zone.stderr).toContain('--timezone: ')
    } finally {
      await gateway.stop()
    }
  })
})

describe('an unknown channel type', () => {
  test('the config error lists the valid types and what was given (start and config validate)', async () => {
    const home = homeWithConfig({ channels: { x: { type: 'slack' } } })
    const start = await runCli(['gateway', '--port', String(await freePort()), '--host', '127.0.0.1'], { home })
    expect(start.code).toBe(78)
    expect(start.stderr).toContain('channels.x.type: must be one of "telegram", "webhook" (got "slack")')
    const validate = await runCli(['config', 'validate'], { home })
    expect(validate.code).toBe(1)
    expect(validate.stdout + validate.stderr).toContain('channels.x.type: must be one of "telegram", "webhook" (got "slack")')
    writeConfig(home, { channels: { x: { enabled: true } } })
    expect((await runCli(['config', 'validate'], { home })).stdout).toContain('channels.x.type: is required')
  })

  test('a secret pasted as the type is not repeated: not by validate, not in the reload answer or the log', async () => {
    const botToken = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw'
    const apiKey = 'sk-live-0123456789abcdefghijkl'
    const home = homeWithConfig({ channels: { a: { type: botToken }, b: { type: { key: apiKey } } } })
    const validate = await runCli(['config', 'validate'], { home })
    expect(validate.code).toBe(1)
    const told = validate.stdout + validate.stderr
    expect(told).toContain('channels.a.type: must be one of "telegram", "webhook" (got another text)')
    expect(told).toContain('channels.b.type: must be one of "telegram", "webhook" (got an object)')
    // Not even a part of either.
    for (const secret of [botToken, apiKey]) expect(told).not.toContain(secret.slice(0, 12))
    // A running gateway whose file is changed to that: the reload is refused, and its answer and log say the same.
    writeConfig(home, { gateway: { auth: { token: TOKEN } } })
    const gateway = await startGateway({ home })
    try {
      writeConfig(home, { gateway: { auth: { token: TOKEN } }, channels: { a: { type: botToken } } })
      const reload = await fetch(`${gateway.url}/api/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
      const answer = await reload.text()
      expect(reload.status).toBe(422)
      expect(answer).toContain('(got another text)')
      expect(answer).not.toContain(botToken.slice(0, 12))
      const log = join(home, '.xopcbot', 'logs', 'gateway.log')
      await waitFor(() => readFileSync(log, 'utf8').includes('(got another text)'), { what: 'the refused reload in the log' })
      expect(readFileSync(log, 'utf8')).not.toContain(botToken.slice(0, 12))
    } finally {
      await gateway.stop()
    }
  })
})

describe('gateway restart', () => {
  test('prints the URL status prints (localhost for a wildcard bind), in plain wording', async () => {
    const home = tempHome()
    const port = await freePort()
    // A wildcard bind is where the address a person opens (localhost) differs from the loopback address the CLI
    // talks to; the API is closed by the token meanwhile.
    writeConfig(home, { gateway: { host: '0.0.0.0', port, auth: { token: TOKEN } } })
    const env = { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }
    const proc = Bun.spawn([...fromSource, 'gateway'], { env: childEnv(home, env), stdout: 'ignore', stderr: 'ignore' })
    try {
      await waitFor(() => healthy(`http://127.0.0.1:${port}`), { what: 'gateway' })
      const statusUrl = lineOf((await runCli(['gateway', 'status'], { home })).stdout, 'URL: ')
      expect(statusUrl).toBe(`URL: http://localhost:${port}`)
      const restart = await runCli(['gateway', 'restart'], { home, env })
      expect(restart.code).toBe(0)
      expect(restart.stdout).toContain('✅ Gateway restarted gracefully (SIGUSR1)')
      expect(restart.stdout).not.toContain('((')
      expect(lineOf(restart.stdout, 'URL: ')).toBe(statusUrl!)
      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
    } finally {
      proc.kill('SIGKILL')
      const left = lockOf(home)
      if (left) process.kill(left.pid, 'SIGKILL')
    }
  })

  const shows = (pid: number) => readCommandLine(pid)?.words ?? readCommandLine(pid)?.text.split(' ') ?? []

  test('a stop + start restart of a gateway started with --force does not run --force again', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home, args: ['--force'] })
    try {
      expect(shows(gateway.proc.pid)).toContain('--force')
      expect(lockOf(home)!.argv).not.toContain('--force')
      const restart = await runCli(['gateway', 'restart'], { home })
      expect(restart.code).toBe(0)
      expect(restart.stdout).toContain('✅ Gateway restarted (stopped, then started with the same arguments)')
      expect(await gateway.proc.exited).toBe(0)
      const next = lockOf(home)!
      expect(next.pid).not.toBe(gateway.proc.pid)
      expect(next.argv).toEqual([ENTRY, 'gateway', '--port', String(gateway.port), '--host', '127.0.0.1'])
      expect(shows(next.pid)).not.toContain('--force')
      expect(shows(next.pid)).toContain('--port')
      expect(await healthy(gateway.url)).toBe(true)
      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
      expect(isSameProcessAlive(next.pid, next.startTime)).toBe(false)
    } finally {
      gateway.proc.kill('SIGKILL')
    }
  })

  test('a respawn (SIGUSR1) of a gateway started with --force does not run --force again', async () => {
    const home = tempHome()
    const env = { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }
    const gateway = await startGateway({ home, args: ['--force'], env })
    try {
      const restart = await runCli(['gateway', 'restart'], { home, env })
      expect(restart.code).toBe(0)
      expect(await gateway.proc.exited).toBe(0)
      const next = lockOf(home)!
      expect(next.pid).not.toBe(gateway.proc.pid)
      expect(shows(next.pid)).not.toContain('--force')
      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
    } finally {
      gateway.proc.kill('SIGKILL')
    }
  })

  test('the one-shot flags left out of what a restart repeats; a value that looks like one stays', () => {
    expect(withoutOneShotArgs(['gateway', '--force', '--port', '1234', '--force=true', '--no-force'])).toEqual(['gateway', '--port', '1234'])
    expect(withoutOneShotArgs(['gateway', '--config', '--force', '--host=::1'])).toEqual(['gateway', '--config', '--force', '--host=::1'])
  })
})

describe('gateway token --rotate', () => {
  test('a hand-written three-line config keeps its lines; only the token changes, and the running gateway takes it', async () => {
    const home = tempHome()
    const port = await freePort()
    const text = `{\n  "gateway": { "host": "127.0.0.1", "port": ${port}, "auth": { "token": "${TOKEN}" } }\n}\n`
    writeConfig(home, text)
    const gateway = await startGateway({ home, port })
    try {
      const rotated = await runCli(['gateway', 'token', '--rotate'], { home })
      expect(rotated.code).toBe(0)
      const token = rotated.stdout.split('\n')[1]!.trim()
      expect(readFileSync(configPathOf(home), 'utf8')).toBe(text.replace(TOKEN, token))
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    } finally {
      await gateway.stop()
    }
  })

  test('a three-line config without a token gets the token added, the rest as written', async () => {
    const home = tempHome()
    const text = '{\n  "logging": { "level": "info" }\n}\n'
    writeConfig(home, text)
    const rotated = await runCli(['gateway', 'token', '--rotate'], { home })
    expect(rotated.code).toBe(0)
    const token = rotated.stdout.split('\n')[1]!.trim()
    const written = readFileSync(configPathOf(home), 'utf8')
    expect(written.startsWith('{\n  "logging": { "level": "info" },\n')).toBe(true)
    expect(JSON.parse(written)).toEqual({ logging: { level: 'info' }, gateway: { auth: { token } } })
  })
})

describe('the login name', () => {
  test('with $USER and $LOGNAME unset it is the account of this uid, not "unknown"', async () => {
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(childEnv(tempHome()))) if (key !== 'USER' && key !== 'LOGNAME') env[key] = value
    const proc = Bun.spawn([process.execPath, '-e', `import { serviceContext } from ${JSON.stringify(join(ROOT, 'src/service'))}; console.log(serviceContext().user)`], { env, stdout: 'pipe' })
    const seen = (await new Response(proc.stdout).text()).trim()
    expect(await proc.exited).toBe(0)
    const expected = process.platform === 'win32' ? seen : Bun.spawnSync(['id', '-un']).stdout.toString().trim()
    expect(seen).not.toBe('unknown')
    expect(seen).toBe(expected)
  })
})

// Against a real systemd user manager, from source: what `--runtime node` writes and says.
const home = tempHome()
const manager = process.platform === 'linux' ? await startUserManager(home) : { skip: 'systemd needs Linux' }
const skip = 'skip' in manager ? manager.skip : null
if (skip) console.log(`skipped: gateway install --runtime node (${skip})`)
afterAll(async () => {
  if (!('skip' in manager)) await manager.stop()
})

describe('gateway install --runtime node', () => {
  test.skipIf(skip !== null)('says it runs bun from this checkout, writes a bun that runs, and names the user in the linger hint without $USER', async () => {
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries((manager as { env: Record<string, string> }).env)) if (key !== 'USER' && key !== 'LOGNAME') env[key] = value
    const cli = async (args: string[]) => {
      const proc = Bun.spawn([...fromSource, ...args], { env, stdout: 'pipe', stderr: 'pipe' })
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
      return { stdout, stderr, code }
    }
    const result = await cli(['gateway', 'install', '--runtime', 'node', '--no-start', '--port', String(await freePort())])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Runtime: bun (from this checkout): ${process.execPath} ${ENTRY}`)
    expect(result.stdout).not.toContain('Runtime: node')
    const user = Bun.spawnSync(['id', '-un']).stdout.toString().trim()
    const lingering = Bun.spawnSync(['loginctl', 'show-user', user, '--property=Linger', '--value']).stdout.toString().trim() === 'yes'
    if (!lingering) {
      // Without lingering the hint names who to enable it for.
      const linger = lineOf(result.stdout, '⚠️ lingering is off')
      expect(linger).toContain(`lingering is off for ${user}:`)
      expect(linger).toContain(`loginctl enable-linger ${user}`)
    }
    expect(result.stdout).not.toContain('unknown')
    // The program the unit runs is a Bun that runs.
    const unit = readFileSync(join(home, '.config/systemd/user/xopcbot-gateway.service'), 'utf8')
    const program = /^ExecStart="([^"]+)"/m.exec(unit)![1]!
    expect(program).toBe(process.execPath)
    const version = Bun.spawnSync([program, '--version'])
    expect(version.exitCode).toBe(0)
    expect(version.stdout.toString().trim()).toBe(Bun.version)
    expect((await cli(['gateway', 'uninstall'])).code).toBe(0)
  }, 60_000)
})
