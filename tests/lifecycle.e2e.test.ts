import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { maskToken } from '../src/cli/output'
import { isSameProcessAlive, pidExists } from '../src/lifecycle/process'
import { childEnv, configPathOf, ENTRY, freePort, fromSource, lockOf, lockPathOf, runCli, startGateway, tempHome, writeConfig } from './helpers/gateway'
import { healthy, json } from './helpers/http'
import { slowInFlight, TEST_HOOKS } from './helpers/test-hooks'
import { waitFor } from './helpers/wait'

describe('the lock', () => {
  test('8 gateways started at the same instant on one config: exactly one runs, the others exit 1 with the message', async () => {
    const home = tempHome()
    const ports = await Promise.all(Array.from({ length: 8 }, () => freePort()))
    const procs = ports.map((port) =>
      Bun.spawn([...fromSource, 'gateway', '--host', '127.0.0.1', '--port', String(port)], { env: childEnv(home), stdout: 'pipe', stderr: 'pipe' }),
    )
    try {
      const winner = await waitFor(async () => {
        for (const [i, port] of ports.entries()) if (await healthy(`http://127.0.0.1:${port}`)) return { index: i, port }
        return null
      }, { what: 'one gateway to serve' })
      const losers = procs.filter((_, i) => i !== winner.index)
      const codes = await Promise.all(losers.map((p) => p.exited))
      expect(codes).toEqual(Array(7).fill(1))
      for (const loser of losers) {
        expect(await new Response(loser.stderr).text()).toContain(`❌ Gateway already running (pid ${procs[winner.index]!.pid}, port ${winner.port})`)
      }
      expect(lockOf(home)?.pid).toBe(procs[winner.index]!.pid)
      procs[winner.index]!.kill('SIGTERM')
      expect(await procs[winner.index]!.exited).toBe(0)
      expect(lockOf(home)).toBeNull()
    } finally {
      for (const p of procs) p.kill('SIGKILL')
    }
  })

  test('two different configs run side by side', async () => {
    const home = tempHome()
    const a = await startGateway({ home, args: ['--config', join(home, 'a.json')] })
    const b = await startGateway({ home, args: ['--config', join(home, 'b.json')] })
    try {
      expect(await healthy(a.url)).toBe(true)
      expect(await healthy(b.url)).toBe(true)
      expect(readdirSync(join(home, '.xopcbot', 'locks')).filter((f) => f.endsWith('.lock'))).toHaveLength(2)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  test('after kill -9 the next start reclaims the stale lock; status reports and cleans a stale lock', async () => {
    const home = tempHome()
    const first = await startGateway({ home })
    first.proc.kill('SIGKILL')
    await first.proc.exited
    expect(lockOf(home)?.pid).toBe(first.proc.pid)

    const second = await startGateway({ home })
    expect(lockOf(home)?.pid).toBe(second.proc.pid)
    second.proc.kill('SIGKILL')
    await second.proc.exited

    const status = await runCli(['gateway', 'status'], { home })
    expect(status.code).toBe(3)
    expect(status.stdout).toContain(`Removed a stale lock of pid ${second.proc.pid}`)
    expect(status.stdout).toContain('❌ Gateway is not running')
    expect(lockOf(home)).toBeNull()
  })

  test('a lock that names a live but unrelated process is judged stale by its start time', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home })
    const lock = lockOf(home)!
    await gateway.stop()
    // Started after the gateway ended, the sleeper has a later start time: the lock's PID now "belongs" to it.
    const sleeper = Bun.spawn(['sleep', '60'])
    try {
      writeFileSync(lockPathOf(home), JSON.stringify({ ...lock, pid: sleeper.pid }))
      const next = await startGateway({ home })
      expect(lockOf(home)?.pid).toBe(next.proc.pid)
      expect(pidExists(sleeper.pid)).toBe(true)
      await next.stop()
    } finally {
      sleeper.kill()
    }
  })
})

describe('status, stop', () => {
  test('status: text and --json, exit 0 running and 3 not running', async () => {
    const home = tempHome()
    const token = 'status-token-abcdefghijklmnop'
    const gateway = await startGateway({ home, args: ['--token', token] })
    try {
      const text = await runCli(['gateway', 'status'], { home })
      expect(text.code).toBe(0)
      for (const line of ['✅ Gateway is running', `PID: ${gateway.proc.pid}`, `Port: ${gateway.port}`, '🌐 Access:', `URL: http://127.0.0.1:${gateway.port}`, `Token: ${maskToken(token)}`, '📝 Management:', 'xopcbot gateway stop']) {
        expect(text.stdout).toContain(line)
      }
      expect(text.stdout).not.toContain(token)
      const json = await runCli(['gateway', 'status', '--json'], { home })
      expect(json.code).toBe(0)
      expect(JSON.parse(json.stdout)).toMatchObject({ running: true, pid: gateway.proc.pid, port: gateway.port, health: 'healthy', token: maskToken(token) })
    } finally {
      await gateway.stop()
    }
    const stopped = await runCli(['gateway', 'status', '--json'], { home })
    expect(stopped.code).toBe(3)
    expect(JSON.parse(stopped.stdout).running).toBe(false)
    expect((await runCli(['gateway', 'status'], { home })).stdout).toContain('❌ Gateway is not running')
  })

  test('stop lets a request in flight complete', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home, env: TEST_HOOKS })
    const inFlight = fetch(`${gateway.url}/_test/slow?ms=1500`)
    await waitFor(async () => (await slowInFlight(gateway.url)) === 1, { what: 'the request in the handler' })
    const stop = await runCli(['gateway', 'stop'], { home })
    const response = await inFlight
    expect(response.status).toBe(200)
    expect((await json(response)).slept).toBe(1500)
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain(`✅ Gateway stopped (pid ${gateway.proc.pid})`)
    expect(await gateway.proc.exited).toBe(0)
    expect(lockOf(home)).toBeNull()
  })

  test('stop --timeout escalates to SIGKILL when the drain does not finish', async () => {
    const home = tempHome()
    writeConfig(home, { gateway: { shutdownTimeoutMs: 60000 } })
    const gateway = await startGateway({ home, env: TEST_HOOKS })
    const blocked = fetch(`${gateway.url}/_test/slow?ms=60000`).catch(() => 'cut')
    await waitFor(async () => (await slowInFlight(gateway.url)) === 1, { what: 'the request in the handler' })
    const stop = await runCli(['gateway', 'stop', '--timeout', '700'], { home })
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain('did not stop within 700 ms; killed it with SIGKILL')
    await gateway.proc.exited
    expect(gateway.proc.signalCode).toBe('SIGKILL')
    expect(await blocked).toBe('cut')
    expect(lockOf(home)).toBeNull()
  })

  test('stop --force kills at once; stop when not running exits 0', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home })
    const stop = await runCli(['gateway', 'stop', '--force'], { home })
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain('killed')
    await gateway.proc.exited
    expect(gateway.proc.signalCode).toBe('SIGKILL')
    expect(lockOf(home)).toBeNull()
    const again = await runCli(['gateway', 'stop'], { home })
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('not running')
  })

  test('bad flag values are usage errors, never commands', async () => {
    for (const args of [['gateway', 'stop', '--timeout', 'soon'], ['gateway', 'logs', '--lines', '1; echo x'], ['gateway', 'logs', '--level', 'loud'], ['gateway', 'status', '--jsno']]) {
      const result = await runCli(args)
      expect(result.code).toBe(2)
      expect(result.stdout).not.toContain('x\n')
    }
  })
})

describe('graceful drain', () => {
  test('while draining: /health is 503 draining, new requests get 503 UNAVAILABLE, the request in flight completes, exit 0', async () => {
    const home = tempHome()
    writeConfig(home, { gateway: { shutdownTimeoutMs: 20000 } })
    const gateway = await startGateway({ home, env: TEST_HOOKS })
    const slow = fetch(`${gateway.url}/_test/slow?ms=1500`)
    await waitFor(async () => (await slowInFlight(gateway.url)) === 1, { what: 'the request in the handler' })
    gateway.proc.kill('SIGTERM')
    const health = await waitFor(async () => {
      const response = await fetch(`${gateway.url}/health`, { headers: { connection: 'close' } })
      return response.status === 503 ? response : null
    }, { what: 'draining health' })
    expect((await json(health)).status).toBe('draining')
    const refused = await fetch(`${gateway.url}/api/status`, { headers: { connection: 'close' } })
    expect(refused.status).toBe(503)
    expect((await json(refused)).error.code).toBe('UNAVAILABLE')
    expect((await slow).status).toBe(200)
    expect(await gateway.proc.exited).toBe(0)
  })

  test('a second Ctrl+C exits at once, without waiting for the drain', async () => {
    const home = tempHome()
    writeConfig(home, { gateway: { shutdownTimeoutMs: 60000 } })
    const gateway = await startGateway({ home, env: TEST_HOOKS })
    fetch(`${gateway.url}/_test/slow?ms=60000`).catch(() => {})
    await waitFor(async () => (await slowInFlight(gateway.url)) === 1, { what: 'the request in the handler' })
    gateway.proc.kill('SIGINT')
    await waitFor(async () => (await fetch(`${gateway.url}/health`, { headers: { connection: 'close' } })).status === 503, { what: 'draining' })
    gateway.proc.kill('SIGINT')
    expect(await gateway.proc.exited).toBe(130)
    expect(lockOf(home)).toBeNull()
  })

  test('a request whose client went away does not hold the drain open', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home, env: TEST_HOOKS })
    const abort = new AbortController()
    const gone = fetch(`${gateway.url}/_test/slow?ms=300`, { signal: abort.signal }).catch(() => 'aborted')
    await waitFor(async () => (await slowInFlight(gateway.url)) === 1, { what: 'the request in the handler' })
    abort.abort()
    expect(await gone).toBe('aborted')
    await waitFor(async () => (await slowInFlight(gateway.url)) === 0, { what: 'the handler to finish' })
    expect(await gateway.stop()).toBe(0)
    const lines = (await runCli(['gateway', 'logs', '--json'], { home })).stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.find((l) => l.msg === 'gateway stopping').inFlight).toBe(0)
  })
})

describe('test routes (XOPCBOT_TEST_PLUGIN)', () => {
  test('mounted only when a test names its module; a module that cannot be loaded stops the start before the lock', async () => {
    const plain = await startGateway()
    try {
      expect((await fetch(`${plain.url}/_test/in-flight`)).status).toBe(404)
    } finally {
      await plain.stop()
    }
    const home = tempHome()
    const missing = join(home, 'no-such-plugin.ts')
    const failed = await runCli(['gateway', '--host', '127.0.0.1', '--port', String(await freePort())], { home, env: { XOPCBOT_TEST_PLUGIN: missing } })
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain(missing)
    expect(lockOf(home)).toBeNull()
  })
})

describe('restart', () => {
  async function afterRestartStillManageable(home: string, pid: number, port: number) {
    const status = await runCli(['gateway', 'status', '--json'], { home })
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid, port })
    expect(lockOf(home)?.pid).toBe(pid)
  }

  test('allowed SIGUSR1 with respawn: a new process serves, the old one is gone, the lock moved; stop still works', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home, env: { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' } })
    const restart = await runCli(['gateway', 'restart'], { home, env: { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' } })
    expect(restart.code).toBe(0)
    expect(await gateway.proc.exited).toBe(0)
    const successor = lockOf(home)!
    expect(successor.pid).not.toBe(gateway.proc.pid)
    expect(restart.stdout).toContain(`PID: ${successor.pid}`)
    expect(await healthy(gateway.url)).toBe(true)
    await afterRestartStillManageable(home, successor.pid, gateway.port)
    // The successor restarts again by signal, and stops by command.
    process.kill(successor.pid, 'SIGUSR1')
    const third = await waitFor(() => {
      const info = lockOf(home)
      return info && info.pid !== successor.pid ? info : null
    }, { what: 'second respawn' })
    await waitFor(() => healthy(gateway.url), { what: 'health after second respawn' })
    const stop = await runCli(['gateway', 'stop'], { home })
    expect(stop.stdout).toContain(`Gateway stopped (pid ${third.pid})`)
    expect(isSameProcessAlive(third.pid, third.startTime)).toBe(false)
  })

  test('XOPCBOT_NO_RESPAWN=1: the same process restarts inside, re-reading the config (a new port takes effect); Ctrl+C still works', async () => {
    const home = tempHome()
    const [portA, portB] = [await freePort(), await freePort()]
    writeConfig(home, { gateway: { host: '127.0.0.1', port: portA } })
    const proc = Bun.spawn([...fromSource, 'gateway'], { env: childEnv(home, { XOPCBOT_NO_RESPAWN: '1', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }), stdout: 'pipe', stderr: 'pipe' })
    try {
      await waitFor(() => healthy(`http://127.0.0.1:${portA}`), { what: 'port A' })
      writeConfig(home, { gateway: { host: '127.0.0.1', port: portB } })
      const restart = await runCli(['gateway', 'restart'], { home })
      expect(restart.code).toBe(0)
      expect(restart.stdout).toContain(`PID: ${proc.pid}`)
      expect(await healthy(`http://127.0.0.1:${portB}`)).toBe(true)
      expect(await healthy(`http://127.0.0.1:${portA}`)).toBe(false)
      await afterRestartStillManageable(home, proc.pid, portB)
      expect(lockOf(home)?.restarts).toBe(1)
      proc.kill('SIGINT')
      expect(await proc.exited).toBe(0)
      expect(lockOf(home)).toBeNull()
    } finally {
      proc.kill('SIGKILL')
    }
  })

  test('an invalid config at restart keeps the running gateway unchanged', async () => {
    const home = tempHome()
    const port = await freePort()
    writeConfig(home, { gateway: { host: '127.0.0.1', port } })
    const proc = Bun.spawn([...fromSource, 'gateway'], { env: childEnv(home, { XOPCBOT_NO_RESPAWN: '1', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }), stdout: 'pipe', stderr: 'pipe' })
    try {
      await waitFor(() => healthy(`http://127.0.0.1:${port}`), { what: 'gateway' })
      writeConfig(home, '{"gateway": {"port": "nope"}}')
      proc.kill('SIGUSR1')
      await waitFor(async () => (await runCli(['gateway', 'logs', '--json'], { home })).stdout.includes('restart refused'), { what: 'refusal logged' })
      expect(await healthy(`http://127.0.0.1:${port}`)).toBe(true)
      expect(pidExists(proc.pid)).toBe(true)
    } finally {
      proc.kill('SIGKILL')
    }
  })

  test('supervised (XOPCBOT_SERVICE_MARKER): SIGUSR1 → graceful stop and exit 75, lock released', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home, env: { XOPCBOT_SERVICE_MARKER: 'test', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' } })
    gateway.proc.kill('SIGUSR1')
    expect(await gateway.proc.exited).toBe(75)
    expect(lockOf(home)).toBeNull()
  })

  test('SIGUSR1 without XOPCBOT_ALLOW_SIGUSR1_RESTART is logged and ignored', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home })
    gateway.proc.kill('SIGUSR1')
    await waitFor(() => gateway.output().includes('SIGUSR1 ignored'), { what: 'the log line' })
    expect(await healthy(gateway.url)).toBe(true)
    expect(await gateway.stop()).toBe(0)
  })

  test('not allowed: restart stops gracefully and starts a background gateway with the recorded arguments', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home })
    const restart = await runCli(['gateway', 'restart'], { home })
    expect(restart.code).toBe(0)
    expect(restart.stdout).toContain('stopped, then started with the same arguments')
    expect(await gateway.proc.exited).toBe(0)
    const next = lockOf(home)!
    expect(next.pid).not.toBe(gateway.proc.pid)
    expect(next.port).toBe(gateway.port)
    expect(next.argv).toEqual([ENTRY, 'gateway', '--port', String(gateway.port), '--host', '127.0.0.1'])
    await afterRestartStillManageable(home, next.pid, gateway.port)
    expect((await runCli(['gateway', 'restart', '--force'], { home })).code).toBe(0)
    const forced = lockOf(home)!
    expect(forced.pid).not.toBe(next.pid)
    expect(isSameProcessAlive(next.pid, next.startTime)).toBe(false)
    expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
  })

  test('restart when nothing runs exits 3', async () => {
    const result = await runCli(['gateway', 'restart'])
    expect(result.code).toBe(3)
    expect(result.stdout).toContain('not running')
  })
})

describe('--force', () => {
  test('frees a port held by a plain listener process, reports what it killed, and starts', async () => {
    const port = await freePort()
    const squatter = Bun.spawn([process.execPath, '-e', `Bun.serve({ hostname: '127.0.0.1', port: ${port}, fetch: () => new Response('squatter') }); console.log('up')`], { stdout: 'pipe' })
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()).catch(() => '')) === 'squatter', { what: 'squatter' })
    const home = tempHome()
    const blocked = await runCli(['gateway', '--host', '127.0.0.1', '--port', String(port)], { home })
    expect(blocked.code).toBe(1)
    const gateway = await startGateway({ home, port, args: ['--force'] })
    try {
      expect(await squatter.exited).not.toBe(null)
      await waitFor(() => gateway.output().includes('✅ Gateway is running'), { what: 'the banner' })
      expect(gateway.output()).toContain(`🔪 Killed pid ${squatter.pid}`)
      expect(gateway.output()).toContain(process.execPath)
      expect(await healthy(gateway.url)).toBe(true)
    } finally {
      await gateway.stop()
      squatter.kill('SIGKILL')
    }
  })

  test('stops the running gateway of the same config first', async () => {
    const home = tempHome()
    const first = await startGateway({ home })
    const second = await startGateway({ home, port: first.port, args: ['--force'] })
    try {
      expect(await first.proc.exited).toBe(0)
      await waitFor(() => second.output().includes('✅ Gateway is running'), { what: 'the banner' })
      expect(second.output()).toContain(`Stopped the running gateway (pid ${first.proc.pid}`)
      expect(lockOf(home)?.pid).toBe(second.proc.pid)
    } finally {
      await second.stop()
    }
  })
})

describe('token', () => {
  test('--rotate saves a new token and the running gateway applies it at once (old token rejected, same pid)', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home })
    try {
      expect((await runCli(['gateway', 'token'], { home })).code).toBe(1)
      const first = await runCli(['gateway', 'token', '--rotate'], { home })
      expect(first.code).toBe(0)
      expect(first.stdout).toContain(`Applied to the running gateway (pid ${gateway.proc.pid})`)
      const tokenA = first.stdout.split('\n')[1]!.trim()
      expect(tokenA).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect((await fetch(`${gateway.url}/api/status`)).status).toBe(401)
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${tokenA}` } })).status).toBe(200)

      const second = await runCli(['gateway', 'token', '--rotate'], { home })
      const tokenB = second.stdout.split('\n')[1]!.trim()
      expect(tokenB).not.toBe(tokenA)
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${tokenA}` } })).status).toBe(401)
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: `Bearer ${tokenB}` } })).status).toBe(200)
      expect((await runCli(['gateway', 'token'], { home })).stdout.trim()).toBe(tokenB)
      expect(existsSync(configPathOf(home))).toBe(true)
      expect(gateway.output()).not.toContain(tokenB)
    } finally {
      await gateway.stop()
    }
  })

  test('--rotate refuses when the environment or a --token flag decides the token', async () => {
    expect((await runCli(['gateway', 'token', '--rotate'], { env: { XOPCBOT_GATEWAY_TOKEN: 'env-token-value-123' } })).stderr).toContain('XOPCBOT_GATEWAY_TOKEN')
  })
})
