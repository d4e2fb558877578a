import { describe, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pidExists } from '../src/lifecycle/process'
import { childEnv, configPathOf, fromSource, freePort, lockOf, runCli, startGateway, tempHome, writeConfig, type RunningGateway } from './helpers/gateway'
import { healthy } from './helpers/http'
import { waitFor } from './helpers/wait'

// Restart is validate-then-act in every mode: an invalid config never takes the running gateway down, and a
// new process that fails after the old one stopped is reported with its own error at once, not after 30 s.

/** Runs the CLI and measures how long it took (killed after 15 s: the old behaviour waited 30 s). */
async function timedCli(args: string[], home: string, env: Record<string, string> = {}) {
  const started = performance.now()
  const result = await runCli(args, { home, env, timeoutMs: 15_000 })
  return { ...result, ms: performance.now() - started }
}

/** The first line a start prints for the config as it is now: restart must print the same sentence. */
async function startError(home: string): Promise<string> {
  const start = await runCli(['gateway', '--port', String(await freePort()), '--host', '127.0.0.1'], { home })
  expect(start.code).toBe(78)
  return start.stderr.split('\n')[0]!
}

/** The gateway that was running is running still: same process, healthy, still the lock's owner. */
async function expectStillServing(gateway: RunningGateway, home: string) {
  expect(gateway.proc.exitCode).toBeNull()
  expect(gateway.proc.signalCode).toBeNull()
  expect(await healthy(gateway.url)).toBe(true)
  expect(lockOf(home)?.pid).toBe(gateway.proc.pid)
}

/** A gateway started from a config file alone (no --port), so that a restart re-reads the port from the file. */
async function startFromConfig(home: string, port: number, env: Record<string, string> = {}) {
  writeConfig(home, { gateway: { host: '127.0.0.1', port } })
  const proc = Bun.spawn([...fromSource, 'gateway'], { env: childEnv(home, env), stdout: 'ignore', stderr: 'ignore', stdin: 'ignore' })
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}`)
    return healthy(`http://127.0.0.1:${port}`)
  }, { what: 'gateway /health', timeoutMs: 15_000 })
  return proc
}

describe('restart with an invalid config leaves the running gateway serving', () => {
  const modes: [string, Record<string, string>][] = [
    ['plain (stop + start)', {}],
    ['SIGUSR1, respawn', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }],
    ['SIGUSR1, in process', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', XOPCBOT_NO_RESPAWN: '1' }],
  ]
  for (const [mode, env] of modes) {
    test(`${mode}: exit 78 at once with the config error a start prints; same pid still healthy`, async () => {
      const home = tempHome()
      const gateway = await startGateway({ home, env })
      try {
        writeConfig(home, '{"gateway": {"port": "nope"}}')
        const sentence = await startError(home)
        expect(sentence).toStartWith(`❌ Invalid config ${configPathOf(home)}: gateway.port`)

        const restart = await timedCli(['gateway', 'restart'], home)
        expect(restart.code).toBe(78)
        expect(restart.stderr).toContain(sentence)
        expect(restart.stdout).toContain(`the gateway (pid ${gateway.proc.pid}) keeps running`)
        expect(restart.ms).toBeLessThan(5000)

        await expectStillServing(gateway, home)
      } finally {
        gateway.proc.kill('SIGKILL')
      }
    })
  }

  test('restart --force: nothing is killed, exit 78', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home })
    try {
      writeConfig(home, '{"gateway": {"port": "nope"}}')
      const sentence = await startError(home)
      const restart = await timedCli(['gateway', 'restart', '--force'], home)
      expect(restart.code).toBe(78)
      expect(restart.stderr).toContain(sentence)
      expect(restart.ms).toBeLessThan(5000)
      await expectStillServing(gateway, home)
    } finally {
      gateway.proc.kill('SIGKILL')
    }
  })

  test('the recorded --token-file is checked too: a file that is gone refuses the restart with the start error', async () => {
    const home = tempHome()
    const tokenFile = join(home, 'token')
    writeFileSync(tokenFile, 'file-token-abcdefghijklmnopqrstuvwxyz\n', { mode: 0o600 })
    const gateway = await startGateway({ home, args: ['--token-file', tokenFile] })
    try {
      rmSync(tokenFile)
      const restart = await timedCli(['gateway', 'restart'], home)
      expect(restart.code).toBe(1)
      expect(restart.stderr).toContain(`❌ --token-file: ${tokenFile} does not exist`)
      expect(restart.ms).toBeLessThan(5000)
      await expectStillServing(gateway, home)
    } finally {
      gateway.proc.kill('SIGKILL')
    }
  })

  test('a ${VAR} that only the CLI lacks does not refuse a SIGUSR1 restart: the gateway judges with its own environment', async () => {
    const home = tempHome()
    const port = await freePort()
    const env = { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', XOPCBOT_NO_RESPAWN: '1', GATEWAY_ONLY_HOST: '127.0.0.1' }
    const proc = await startFromConfig(home, port, env)
    try {
      writeConfig(home, { gateway: { host: '${GATEWAY_ONLY_HOST}', port } })
      const restart = await timedCli(['gateway', 'restart'], home)
      expect(restart.stderr).toBe('')
      expect(restart.code).toBe(0)
      expect(lockOf(home)?.restarts).toBe(1)
      expect(await healthy(`http://127.0.0.1:${port}`)).toBe(true)
    } finally {
      proc.kill('SIGKILL')
    }
  })
})

describe('a new process that fails at start is reported with its own error', () => {
  /** Another program on the port the changed config asks for: only the new process hits it. */
  function squat(port: number) {
    return Bun.serve({ hostname: '127.0.0.1', port, fetch: () => new Response('squatter') })
  }

  test('stop + start: the CLI prints the new process error and exits 1 as soon as it exits; gateway logs has it', async () => {
    const home = tempHome()
    const [portA, portB] = [await freePort(), await freePort()]
    const proc = await startFromConfig(home, portA)
    const squatter = squat(portB)
    try {
      writeConfig(home, { gateway: { host: '127.0.0.1', port: portB } })
      const restart = await timedCli(['gateway', 'restart'], home)
      expect(restart.code).toBe(1)
      expect(restart.stderr).toContain(`❌ Port ${portB} is already in use.`)
      expect(restart.ms).toBeLessThan(10_000)
      expect(await proc.exited).toBe(0)
      expect(lockOf(home)).toBeNull()
      const logs = await runCli(['gateway', 'logs', '--level', 'error'], { home })
      expect(logs.stdout).toContain(`Port ${portB} is already in use`)
    } finally {
      proc.kill('SIGKILL')
      squatter.stop(true)
    }
  })

  const signalled: [string, Record<string, string>][] = [
    ['SIGUSR1, respawn', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }],
    ['SIGUSR1, in process', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', XOPCBOT_NO_RESPAWN: '1' }],
  ]
  for (const [mode, env] of signalled) {
    test(`${mode}: exit 1 with the error; the old process carries on with its previous config`, async () => {
      const home = tempHome()
      const [portA, portB] = [await freePort(), await freePort()]
      const proc = await startFromConfig(home, portA, env)
      const squatter = squat(portB)
      try {
        writeConfig(home, { gateway: { host: '127.0.0.1', port: portB } })
        const restart = await timedCli(['gateway', 'restart'], home)
        expect(restart.code).toBe(1)
        expect(restart.stderr).toContain(`❌ Port ${portB} is already in use.`)
        expect(restart.ms).toBeLessThan(10_000)
        await waitFor(() => lockOf(home)?.pid === proc.pid && healthy(`http://127.0.0.1:${portA}`), { what: 'the old process serving again' })
        expect(pidExists(proc.pid)).toBe(true)
        const logs = await runCli(['gateway', 'logs', '--level', 'error'], { home })
        expect(logs.stdout).toContain(`Port ${portB} is already in use`)
      } finally {
        proc.kill('SIGKILL')
        squatter.stop(true)
      }
    })
  }
})
