import { describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AlreadyRunningError,
  GatewayLock,
  inspectLock,
  lockPathFor,
  maskTokenArgs,
  readKeptToken,
  readLock,
  removeStaleLock,
  tokenPathFor,
  withoutTokenArgs,
  type LockInfo,
} from '../src/lifecycle/lock'
import { commandShowsGateway, identify, isRunning, isSameProcessAlive, maskTokenText, processStartTime, readCommandLine, type ExpectedCommand } from '../src/lifecycle/process'
import { waitFor } from './helpers/wait'
import { refuseToKill } from '../src/lifecycle/ports'

const linux = process.platform === 'linux'
if (!linux) console.log(`skipped: the /proc tests (start times, zombies) need Linux, this is ${process.platform}`)

const fields = {
  configPath: '/x/config.json',
  host: '127.0.0.1',
  port: 1234,
  version: 'test',
  execPath: process.execPath,
  argv: ['gateway'],
  cwd: '/',
  supervised: false,
  allowSigusr1Restart: false,
  respawn: true,
  restarts: 0,
}
const lockFile = () => join(mkdtempSync(join(tmpdir(), 'xopcbot-lock-')), 'locks', 'gateway.test.lock')

describe('GatewayLock', () => {
  test('acquire writes a private lock with what status/stop/restart need; a second acquire fails', () => {
    const path = lockFile()
    const lock = GatewayLock.acquire(path, fields)
    const info = readLock(path)!
    expect(info.pid).toBe(process.pid)
    expect(info.startTime).toBe(processStartTime(process.pid))
    expect(info.nonce).toMatch(/^[0-9a-f]{32}$/)
    expect(info).toMatchObject({ port: 1234, host: '127.0.0.1', version: 'test', execPath: process.execPath, argv: ['gateway'] })
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(() => GatewayLock.acquire(path, fields)).toThrow(AlreadyRunningError)
    expect(() => GatewayLock.acquire(path, fields)).toThrow(`Gateway already running (pid ${process.pid}, port 1234)`)
    lock.release()
    expect(existsSync(path)).toBe(false)
  })

  test('only the owner releases: a lock that is no longer ours is left alone', () => {
    const path = lockFile()
    const lock = GatewayLock.acquire(path, fields)
    const other = { ...readLock(path)!, nonce: 'f'.repeat(32) }
    writeFileSync(path, JSON.stringify(other))
    lock.release()
    expect(readLock(path)?.nonce).toBe('f'.repeat(32))
  })

  test('a lock whose PID now belongs to another process is stale (start time differs)', async () => {
    const sleeper = Bun.spawn(['sleep', '30'])
    try {
      const path = lockFile()
      const lock = GatewayLock.acquire(path, fields)
      const forged: LockInfo = { ...lock.current, pid: sleeper.pid }
      writeFileSync(path, JSON.stringify(forged))
      expect(isSameProcessAlive(sleeper.pid, forged.startTime)).toBe(false)
      expect(inspectLock(path).state).toBe('stale')
      const again = GatewayLock.acquire(path, fields)
      expect(readLock(path)!.nonce).toBe(again.current.nonce)
    } finally {
      sleeper.kill()
    }
  })

  test('a lock of a dead process is stale and reclaimed', async () => {
    const child = Bun.spawn(['true'])
    await child.exited
    const path = lockFile()
    const lock = GatewayLock.acquire(path, fields)
    writeFileSync(path, JSON.stringify({ ...lock.current, pid: child.pid }))
    expect(inspectLock(path).state).toBe('stale')
    expect(GatewayLock.acquire(path, fields).current.pid).toBe(process.pid)
  })

  test('reclaiming puts back a lock that was replaced after it was judged stale', () => {
    const path = lockFile()
    const lock = GatewayLock.acquire(path, fields)
    const judged = { ...lock.current, nonce: 'a'.repeat(32) }
    expect(removeStaleLock(path, judged)).toBe(false)
    expect(readLock(path)?.nonce).toBe(lock.current.nonce)
    expect(removeStaleLock(path, lock.current)).toBe(true)
    expect(existsSync(path)).toBe(false)
  })

  test('an unreadable lock file is stale', () => {
    const path = lockFile()
    GatewayLock.acquire(path, fields)
    writeFileSync(path, '{not json')
    expect(inspectLock(path).state).toBe('stale')
  })

  test('lock paths: one per config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xopcbot-lockpath-'))
    expect(lockPathFor('/l', join(dir, 'a.json'))).toBe(lockPathFor('/l', join(dir, 'x', '..', 'a.json')))
    expect(lockPathFor('/l', join(dir, 'a.json'))).not.toBe(lockPathFor('/l', join(dir, 'b.json')))
    expect(lockPathFor('/l', join(dir, 'a.json'))).toMatch(/^\/l\/gateway\.[0-9a-f]{16}\.lock$/)
  })
})

describe('--force safety rules', () => {
  const context = { self: 500, parent: 400, uid: process.getuid!() }
  test('never PID 1, itself or its parent', () => {
    expect(refuseToKill(1, context)).toContain('PID 1')
    expect(refuseToKill(500, context)).toContain('this process')
    expect(refuseToKill(400, context)).toContain('parent')
  })
  test("never another user's process", () => {
    expect(refuseToKill(process.pid, { ...context, uid: context.uid + 1 })).toContain('another user')
    expect(refuseToKill(process.pid, context)).toBeNull()
  })
  test.skipIf(!linux)('the start time reads from /proc on Linux and distinguishes processes', () => {
    const mine = processStartTime(process.pid)!
    expect(mine).toMatch(/^[0-9a-f-]+:\d+$/)
    expect(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()).toBe(mine.split(':')[0]!)
    expect(processStartTime(1)).not.toBe(mine)
  })
})

describe('process liveness', () => {
  test.skipIf(!linux)('a zombie (exited, not yet collected by its parent) is not alive (Linux: /proc shows the zombie state)', () => {
    const child = Bun.spawn(['true'])
    // Block the event loop so that Bun cannot collect the child's exit status: it stays a zombie.
    const until = Date.now() + 300
    while (Date.now() < until) {}
    expect(readFileSync(`/proc/${child.pid}/stat`, 'utf8')).toMatch(/\) Z /)
    expect(isRunning(child.pid)).toBe(false)
    expect(isSameProcessAlive(child.pid, processStartTime(child.pid))).toBe(false)
    expect(identify({ pid: child.pid, startTime: null, execPath: '/usr/bin/true', argv: [], cwd: '/' }).kind).toBe('gone')
  })

  test('a live process with no recorded start time is identified by its command line', async () => {
    const sleeper = Bun.spawn(['sleep', '30'])
    try {
      // Right after the spawn the child may not have finished exec'ing sleep yet.
      await waitFor(() => readCommandLine(sleeper.pid)?.text === 'sleep 30', { what: 'sleep to be running' })
      const found = identify({ pid: sleeper.pid, startTime: null, execPath: process.execPath, argv: ['/x/src/index.ts', 'gateway'], cwd: '/' })
      expect(found).toEqual({ kind: 'other', by: 'command-line', command: 'sleep 30' })
      const recorded = identify({ pid: sleeper.pid, startTime: processStartTime(sleeper.pid), execPath: process.execPath, argv: [], cwd: '/' })
      expect(recorded.kind).toBe('gateway')
    } finally {
      sleeper.kill()
    }
  })
})

describe('does a command line show the gateway of a lock?', () => {
  const source: ExpectedCommand = { execPaths: ['/opt/bun/bin/bun'], entry: '/home/me/xopcbot/src/index.ts', cwd: '/home/me/xopcbot' }
  const binary: ExpectedCommand = { execPaths: ['/home/me/.xopcbot/bin/xopcbot'], entry: null, cwd: '/home/me' }
  const linux = (words: string[], exe: string | null = null) => ({ words, exe, text: words.join(' ') })
  const text = (line: string, exe: string | null = null) => ({ words: null, exe, text: line })

  test('Linux: by /proc/<pid>/exe or the first word, with the entry file (relative to the working directory) and "gateway"', () => {
    expect(commandShowsGateway(linux(['bun', 'src/index.ts', 'gateway', '--port', '1'], '/opt/bun/bin/bun'), source, 'linux')).toBe(true)
    expect(commandShowsGateway(linux(['/opt/bun/bin/bun', '/home/me/xopcbot/src/index.ts', 'gateway']), source, 'linux')).toBe(true)
    expect(commandShowsGateway(linux(['bun', 'src/index.ts', 'gateway']), source, 'linux')).toBe(true)
    expect(commandShowsGateway(linux(['sleep', '300'], '/usr/bin/sleep'), source, 'linux')).toBe(false)
    expect(commandShowsGateway(linux(['bun', 'other.ts', 'gateway'], '/opt/bun/bin/bun'), source, 'linux')).toBe(false)
    expect(commandShowsGateway(linux(['bun', 'src/index.ts', 'cron', 'list'], '/opt/bun/bin/bun'), source, 'linux')).toBe(false)
    expect(commandShowsGateway(linux(['/usr/bin/node', 'src/index.ts', 'gateway'], '/usr/bin/node'), source, 'linux')).toBe(false)
    expect(commandShowsGateway(linux(['xopcbot', 'gateway', '--config', '/c.json'], '/home/me/.xopcbot/bin/xopcbot'), binary, 'linux')).toBe(true)
    expect(commandShowsGateway(linux(['./xopcbot', 'gateway'], '/tmp/xopcbot'), binary, 'linux')).toBe(false)
    expect(commandShowsGateway(linux([], null), binary, 'linux')).toBe(false)
  })

  test('macOS (ps) and Windows (Win32_Process): one string; paths compared without case', () => {
    const mac: ExpectedCommand = { execPaths: ['/Users/Me/.bun/bin/bun'], entry: '/Users/Me/xopcbot/src/index.ts', cwd: '/Users/Me/xopcbot' }
    expect(commandShowsGateway(text('/users/me/.bun/bin/bun /Users/Me/xopcbot/src/index.ts gateway --port 1'), mac, 'darwin')).toBe(true)
    expect(commandShowsGateway(text('bun src/index.ts gateway'), mac, 'darwin')).toBe(true)
    expect(commandShowsGateway(text('sleep 300'), mac, 'darwin')).toBe(false)
    const win: ExpectedCommand = { execPaths: ['C:\\Users\\me\\.xopcbot\\bin\\xopcbot.exe'], entry: null, cwd: 'C:\\Users\\me' }
    expect(commandShowsGateway(text('"C:\\Users\\me\\.xopcbot\\bin\\xopcbot.exe" gateway --config C:\\c.json', 'C:\\Users\\me\\.xopcbot\\bin\\xopcbot.exe'), win, 'win32')).toBe(true)
    expect(commandShowsGateway(text('C:\\Windows\\notepad.exe gateway', 'C:\\Windows\\notepad.exe'), win, 'win32')).toBe(false)
  })
})

describe('the token in recorded arguments', () => {
  test('--token values are masked in the lock, dropped for a successor, and masked in reports', () => {
    expect(maskTokenArgs(['gateway', '--token', 's3cret-value', '--port', '1'])).toEqual(['gateway', '--token', '***', '--port', '1'])
    expect(maskTokenArgs(['gateway', '--token=s3cret-value', '--token-file', 'f'])).toEqual(['gateway', '--token=***', '--token-file', 'f'])
    expect(withoutTokenArgs(['gateway', '--token', '***', '--port', '1', '--token=***'])).toEqual(['gateway', '--port', '1'])
    expect(maskTokenText('bun x.ts gateway --token s3cret-value --token-file f --token=abc')).toBe('bun x.ts gateway --token *** --token-file f --token=***')
  })

  test('a kept token is private, tied to its lock, and goes with it', () => {
    const path = lockFile()
    const lock = GatewayLock.acquire(path, fields)
    lock.keepToken('kept-token-123456')
    expect(statSync(tokenPathFor(path)).mode & 0o777).toBe(0o600)
    expect(readFileSync(path, 'utf8')).not.toContain('kept-token-123456')
    expect(readKeptToken(path, lock.current)).toBe('kept-token-123456')
    expect(readKeptToken(path, { nonce: 'b'.repeat(32) })).toBeNull()
    lock.release()
    expect(existsSync(tokenPathFor(path))).toBe(false)

    const killed = GatewayLock.acquire(path, fields)
    killed.keepToken('kept-token-123456')
    expect(removeStaleLock(path, killed.current)).toBe(true)
    expect(existsSync(tokenPathFor(path))).toBe(false)
  })
})
