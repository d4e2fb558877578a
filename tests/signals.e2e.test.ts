import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Subprocess } from 'bun'
import { readLock, type LockInfo } from '../src/lifecycle/lock'
import { isRunning, processStartTime } from '../src/lifecycle/process'
import { configPathOf, ENTRY, freePort, lockOf, lockPathOf, runCli, startGateway, tempHome } from './helpers/gateway'

// SPEC §7: signals go only to a verified gateway. A lock whose PID now runs another program must never make
// stop, restart or status signal that program.

const sleepers: Subprocess[] = []
afterAll(() => {
  for (const sleeper of sleepers) sleeper.kill('SIGKILL')
})

function startSleeper() {
  const sleeper = Bun.spawn(['sleep', '300'], { stdout: 'ignore', stderr: 'ignore' })
  sleepers.push(sleeper)
  return sleeper
}

/** A lock as a gateway from source would write it, naming `pid`. */
function writeLock(home: string, pid: number, fields: Partial<LockInfo> = {}) {
  const lockPath = lockPathOf(home)
  mkdirSync(join(home, '.xopcbot', 'locks'), { recursive: true, mode: 0o700 })
  const info: LockInfo = {
    pid,
    createdAt: new Date().toISOString(),
    configPath: configPathOf(home),
    startTime: null,
    host: '127.0.0.1',
    port: 1,
    version: 'test',
    execPath: process.execPath,
    argv: [ENTRY, 'gateway', '--host', '127.0.0.1', '--port', '1'],
    cwd: process.cwd(),
    nonce: randomBytes(16).toString('hex'),
    supervised: false,
    allowSigusr1Restart: false,
    respawn: true,
    restarts: 0,
    ...fields,
  }
  writeFileSync(lockPath, JSON.stringify(info), { mode: 0o600 })
  return lockPath
}

/** The sleeper still runs: no signal reached it (a signalled `sleep` dies or, uncollected, turns zombie). */
function expectUntouched(sleeper: Subprocess) {
  expect(sleeper.exitCode).toBeNull()
  expect(sleeper.signalCode).toBeNull()
  expect(() => process.kill(sleeper.pid, 0)).not.toThrow()
  if (process.platform === 'linux') expect(readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8')).toMatch(/\) S /)
}

describe('a lock whose PID runs another program', () => {
  const commands = [
    ['gateway', 'stop'],
    ['gateway', 'stop', '--force'],
    ['gateway', 'restart'],
    ['gateway', 'restart', '--force'],
    ['gateway', 'status'],
    ['gateway', 'status', '--json'],
  ]

  for (const args of commands) {
    test(`no start time recorded: ${args.join(' ')} signals nothing, says why, and removes the stale lock`, async () => {
      const home = tempHome()
      const sleeper = startSleeper()
      const lockPath = writeLock(home, sleeper.pid)
      const result = await runCli(args, { home })
      expectUntouched(sleeper)
      if (args.includes('--json')) {
        expect(JSON.parse(result.stdout)).toMatchObject({ running: false, staleLockRemoved: { pid: sleeper.pid, command: 'sleep 300' } })
      } else {
        expect(result.stdout).toContain(`⚠️ The lock names pid ${sleeper.pid}, but that process is not an xopcbot gateway (it runs "sleep 300"); nothing was signalled. Removed the stale lock.`)
      }
      expect(result.code).toBe(args[1] === 'stop' ? 0 : 3)
      expect(readLock(lockPath)).toBeNull()
    })
  }

  test('a gateway that allows SIGUSR1: restart sends no SIGUSR1 to the other program', async () => {
    const home = tempHome()
    const sleeper = startSleeper()
    writeLock(home, sleeper.pid, { allowSigusr1Restart: true })
    const result = await runCli(['gateway', 'restart'], { home })
    expectUntouched(sleeper)
    expect(result.code).toBe(3)
    expect(result.stdout).toContain('nothing was signalled')
  })

  test('a start time that does not match: stop and stop --force signal nothing', async () => {
    const home = tempHome()
    const sleeper = startSleeper()
    const other = processStartTime(process.pid)
    for (const args of [['gateway', 'stop'], ['gateway', 'stop', '--force'], ['gateway', 'restart', '--force']]) {
      writeLock(home, sleeper.pid, { startTime: other })
      const result = await runCli(args, { home })
      expectUntouched(sleeper)
      expect(result.stdout).toContain(`⚠️ The lock names pid ${sleeper.pid}, but that process is not the gateway that wrote it (it started at another time and runs "sleep 300"); nothing was signalled. Removed the stale lock.`)
    }
  })

  test('gateway --force with such a lock leaves the other program alone and starts', async () => {
    const home = tempHome()
    const sleeper = startSleeper()
    writeLock(home, sleeper.pid)
    const gateway = await startGateway({ home, args: ['--force'] })
    try {
      expectUntouched(sleeper)
      expect(lockOf(home)?.pid).toBe(gateway.proc.pid)
      expect(gateway.output()).toContain(`⚠️ The lock names pid ${sleeper.pid}, but that process is not an xopcbot gateway (it runs "sleep 300"); nothing was signalled.`)
    } finally {
      expect(await gateway.stop()).toBe(0)
    }
  })
})

describe('a real gateway whose lock has no start time', () => {
  const forgetStartTime = (lockPath: string) => {
    const info = readLock(lockPath)!
    writeFileSync(lockPath, JSON.stringify({ ...info, startTime: null }), { mode: 0o600 })
    return info
  }

  test('is recognised by its command line: status shows it, restart and stop reach it', async () => {
    const home = tempHome()
    const gateway = await startGateway({ home, port: await freePort() })
    const lockPath = lockPathOf(home)
    forgetStartTime(lockPath)
    const status = await runCli(['gateway', 'status'], { home })
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`PID: ${gateway.proc.pid}`)

    const restart = await runCli(['gateway', 'restart'], { home })
    expect(restart.code).toBe(0)
    expect(await gateway.proc.exited).toBe(0)
    const next = forgetStartTime(lockPath)
    expect(next.pid).not.toBe(gateway.proc.pid)

    const stop = await runCli(['gateway', 'stop'], { home })
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain(`✅ Gateway stopped (pid ${next.pid})`)
    expect(readLock(lockPath)).toBeNull()
    // Gone, or a zombie its new parent has not collected yet.
    expect(isRunning(next.pid)).toBe(false)
  })
})
