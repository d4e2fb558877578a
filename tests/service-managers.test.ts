import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { XMLParser } from 'fast-xml-parser'
import { serviceContext, serviceManager } from '../src/service'
import { ServiceError, type ServiceSpec } from '../src/service/types'
import { ROOT } from './helpers/gateway'

// launchctl and schtasks are recording fakes (tests/fakes/bin) found on PATH; the managers run them as
// they would run the real ones.
let dir: string
let home: string
const originalPath = process.env.PATH
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xopcbot-fake-manager-'))
  home = mkdtempSync(join(tmpdir(), 'xopcbot-fake-home-'))
  process.env.PATH = `${join(ROOT, 'tests/fakes/bin')}:${originalPath}`
  process.env.FAKE_LOG = join(dir, 'calls.log')
  process.env.FAKE_DIR = dir
  writeFileSync(process.env.FAKE_LOG, '')
})
afterEach(() => {
  process.env.PATH = originalPath
  delete process.env.FAKE_BOOTSTRAP_ERROR
  delete process.env.FAKE_SCHTASKS_DENY
})

const calls = () => readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n').filter(Boolean)
const spec = (name: string): ServiceSpec => ({
  name,
  description: 'xopcbot gateway',
  program: '/Users/me/.xopcbot/bin/xopcbot',
  args: ['gateway', '--config', '/Users/me/.xopcbot/config.json'],
  workingDirectory: '/Users/me',
  env: { XOPCBOT_SERVICE_MARKER: 'launchd', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' },
  stopTimeoutMs: 5000,
  logDir: join(home, 'logs'),
})

describe('launchd', () => {
  const manager = () => serviceManager(serviceContext({ platform: 'darwin', homeDir: home, uid: 501, user: 'me' }))

  test('install → status → stop → start → uninstall: the exact launchctl sequence', async () => {
    const m = manager()
    expect(await m.unavailable()).toBeNull()
    await m.install(spec('ai.xopcbot.gateway'), { start: true })
    const plist = join(home, 'Library/LaunchAgents/ai.xopcbot.gateway.plist')
    expect(readFileSync(join(dir, 'bootstrapped.plist'), 'utf8')).toBe(readFileSync(plist, 'utf8'))
    expect(new XMLParser().parse(readFileSync(plist, 'utf8')).plist.dict.string[0]).toBe('ai.xopcbot.gateway')
    expect(await m.status('ai.xopcbot.gateway')).toMatchObject({ installed: true, state: 'running', pid: 4242, program: '/Users/me/.xopcbot/bin/xopcbot', args: ['gateway', '--config', '/Users/me/.xopcbot/config.json'] })
    await m.stop('ai.xopcbot.gateway')
    expect((await m.status('ai.xopcbot.gateway')).state).toBe('stopped')
    await m.start('ai.xopcbot.gateway')
    await m.uninstall('ai.xopcbot.gateway')
    expect(existsSync(plist)).toBe(false)
    expect(calls()).toEqual([
      'launchctl print gui/501',
      'launchctl bootout gui/501/ai.xopcbot.gateway',
      'launchctl enable gui/501/ai.xopcbot.gateway',
      `launchctl bootstrap gui/501 ${plist}`,
      'launchctl print gui/501/ai.xopcbot.gateway',
      'launchctl bootout gui/501/ai.xopcbot.gateway',
      'launchctl print gui/501/ai.xopcbot.gateway',
      'launchctl print gui/501/ai.xopcbot.gateway',
      `launchctl bootstrap gui/501 ${plist}`,
      'launchctl bootout gui/501/ai.xopcbot.gateway',
    ])
  })

  test('bootstrap error 5 becomes a message that says what launchd did and where to look', async () => {
    process.env.FAKE_BOOTSTRAP_ERROR = '1'
    const error = await manager()
      .install(spec('ai.xopcbot.gateway'), { start: true })
      .catch((e) => e)
    expect(error).toBeInstanceOf(ServiceError)
    expect(error.message).toContain('launchctl bootstrap gui/501')
    expect(error.message).toContain('Bootstrap failed: 5: Input/output error')
    expect(error.message).toContain('launchctl print gui/501/')
  })
})

describe('Task Scheduler', () => {
  const manager = () => serviceManager(serviceContext({ platform: 'win32', homeDir: home, uid: 0, user: 'PC\\me' }))
  const winSpec = () => ({ ...spec('xopcbot-gateway'), program: 'C:\\Users\\me\\.xopcbot\\bin\\xopcbot.exe', args: ['gateway', '--config', 'C:\\Users\\me\\.xopcbot\\config.json'], workingDirectory: 'C:\\Users\\me', env: { XOPCBOT_SERVICE_MARKER: 'schtasks' } })

  test('install → status (from numeric result codes) → stop → uninstall: the exact schtasks sequence', async () => {
    const m = manager()
    const w = winSpec()
    await m.install(w, { start: true })
    const stored = readFileSync(join(dir, 'task.xml'))
    expect([stored[0], stored[1]]).toEqual([0xff, 0xfe]) // UTF-16 with a byte order mark
    expect(await m.status('xopcbot-gateway')).toMatchObject({ installed: true, state: 'running', program: w.program, args: w.args, workingDirectory: 'C:\\Users\\me' })
    await m.stop('xopcbot-gateway')
    expect((await m.status('xopcbot-gateway')).state).toBe('stopped')
    await m.uninstall('xopcbot-gateway')
    expect((await m.status('xopcbot-gateway')).installed).toBe(false)
    const sequence = calls().map((c) => c.replace(/\/XML \S+task\.xml/, '/XML <file>'))
    expect(sequence).toEqual([
      'schtasks /Create /TN xopcbot-gateway /XML <file> /F',
      'schtasks /Run /TN xopcbot-gateway',
      'schtasks /Query /TN xopcbot-gateway /XML',
      'schtasks /Query /TN xopcbot-gateway /FO CSV /NH /V',
      'schtasks /End /TN xopcbot-gateway',
      'schtasks /Query /TN xopcbot-gateway /XML',
      'schtasks /Query /TN xopcbot-gateway /FO CSV /NH /V',
      'schtasks /End /TN xopcbot-gateway',
      'schtasks /Delete /TN xopcbot-gateway /F',
      'schtasks /Query /TN xopcbot-gateway /XML',
    ])
  })

  test('access denied becomes a clear error', async () => {
    process.env.FAKE_SCHTASKS_DENY = '1'
    const error = await manager()
      .install(winSpec(), { start: true })
      .catch((e) => e)
    expect(error).toBeInstanceOf(ServiceError)
    expect(error.message).toContain('ERROR: Access is denied.')
    expect(error.message).toContain('Task Scheduler refused it')
  })
})

describe('systemd without a user manager', () => {
  test('says so, and what to do', async () => {
    const m = serviceManager(serviceContext({ platform: 'linux', homeDir: home, env: { ...process.env, XDG_RUNTIME_DIR: join(dir, 'nothing-here'), DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' } }))
    const saved = { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS }
    process.env.XDG_RUNTIME_DIR = join(dir, 'nothing-here')
    process.env.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent'
    try {
      expect(await m.unavailable()).toMatch(/not reachable|not installed/)
    } finally {
      for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v)
    }
  })
})
