import { describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AlreadyRunningError, GatewayLock, inspectLock, lockPathFor, readLock, removeStaleLock, type LockInfo } from '../src/lifecycle/lock'
import { isSameProcessAlive, processStartTime } from '../src/lifecycle/process'
import { refuseToKill } from '../src/lifecycle/ports'

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
  test('the start time reads from /proc on Linux and distinguishes processes', () => {
    if (process.platform !== 'linux') return
    const mine = processStartTime(process.pid)!
    expect(mine).toMatch(/^[0-9a-f-]+:\d+$/)
    expect(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()).toBe(mine.split(':')[0]!)
    expect(processStartTime(1)).not.toBe(mine)
  })
})

describe('process liveness', () => {
  test('a zombie (exited, not yet collected by its parent) is not alive', () => {
    if (process.platform !== 'linux') return
    const child = Bun.spawn(['true'])
    // Block the event loop so that Bun cannot collect the child's exit status: it stays a zombie.
    const until = Date.now() + 300
    while (Date.now() < until) {}
    expect(readFileSync(`/proc/${child.pid}/stat`, 'utf8')).toMatch(/\) Z /)
    expect(isSameProcessAlive(child.pid, null)).toBe(false)
  })
})
