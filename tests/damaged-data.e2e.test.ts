import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { closeSync, existsSync, mkdirSync, openSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ExitCode } from '../src/errors'
import { parseUnit, renderUnit } from '../src/service/systemd'
import { freePort, homeWithConfig, runCli, startGateway, tempHome } from './helpers/gateway'

/** A real database of a gateway that ran and stopped cleanly, with enough rows to have pages in the middle. */
async function realDatabase(): Promise<{ home: string; db: string }> {
  const port = await freePort()
  const home = homeWithConfig({ gateway: { host: '127.0.0.1', port } })
  const gateway = await startGateway({ home, port })
  expect(await gateway.stop()).toBe(0)
  const db = join(home, '.xopcbot', 'xopcbot.db')
  const raw = new Database(db)
  const insert = raw.query('INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)')
  raw.transaction(() => {
    for (let n = 0; n < 2000; n++) insert.run(`key-${n}`, 'x'.repeat(200), new Date().toISOString())
  })()
  raw.close()
  expect(existsSync(`${db}-wal`)).toBe(false)
  return { home, db }
}

// Each test starts a gateway or two; on a version without the check one runs until startOnce kills it.
setDefaultTimeout(30_000)

const PAGE = 4096

/** `xopcbot gateway` that must stop by itself; one that runs anyway (the bug) is killed after 10 s. */
const startOnce = (home: string, port: number, env: Record<string, string> = {}) => runCli(['gateway', '--port', String(port), '--host', '127.0.0.1'], { home, env, timeoutMs: 10_000 })

/** Overwrites `count` pages in the middle of the file with a byte pattern no page of SQLite has. */
function corruptMiddlePages(path: string, count = 3) {
  const pages = Math.floor(statSync(path).size / PAGE)
  expect(pages).toBeGreaterThan(20)
  const fd = openSync(path, 'r+')
  try {
    for (let page = Math.floor(pages / 2); page < Math.floor(pages / 2) + count; page++) writeSync(fd, Buffer.alloc(PAGE, 0xa5), 0, PAGE, page * PAGE)
  } finally {
    closeSync(fd)
  }
}

/** What every damaged-database start must look like: exit 65, the path, the advice, no stack trace. */
function expectClearStop(result: { code: number; stdout: string; stderr: string }, db: string) {
  expect(result.code).toBe(ExitCode.DATA)
  expect(result.stderr).toContain(`The database ${db}`)
  expect(result.stderr).toContain('restore it from a backup')
  expect(result.stderr).toContain(`mv ${db} ${db}.damaged`)
  expect(result.stderr).not.toContain('Unexpected error')
  expect(result.stderr).not.toMatch(/^\s+at /m)
  expect(result.stdout).not.toContain('Gateway is running')
}

describe('a damaged database stops the start with exit 65 and what to do', () => {
  test('a file that is not a database at all', async () => {
    const port = await freePort()
    const home = homeWithConfig({ gateway: { host: '127.0.0.1', port } })
    const db = join(home, '.xopcbot', 'xopcbot.db')
    writeFileSync(db, 'this is not a database, it is some text that ended up here\n'.repeat(100))
    const result = await startOnce(home, port)
    expectClearStop(result, db)
    expect(result.stderr).toContain('is not an SQLite database')
    // The lock is released: a later start after moving the file aside works.
    const lock = await runCli(['gateway', 'status', '--json'], { home })
    expect(JSON.parse(lock.stdout).running).toBe(false)
  })

  test('a real database with pages damaged in the middle fails its integrity check', async () => {
    const { home, db } = await realDatabase()
    corruptMiddlePages(db)
    const port = await freePort()
    const result = await startOnce(home, port)
    expectClearStop(result, db)
    expect(result.stderr).toContain('is damaged')
  })

  test('a real database cut off in the middle', async () => {
    const { home, db } = await realDatabase()
    truncateSync(db, Math.floor(statSync(db).size / PAGE / 2) * PAGE)
    const port = await freePort()
    const result = await startOnce(home, port)
    expectClearStop(result, db)
  })

  test('following the advice (moving it aside) starts the gateway with an empty database', async () => {
    const { home, db } = await realDatabase()
    corruptMiddlePages(db)
    const port = await freePort()
    const first = await startOnce(home, port)
    const command = /\((mv [^)]*)\)/.exec(first.stderr)?.[1]
    expect(command).toBeDefined()
    for (const [, from, to] of command!.matchAll(/mv (\S+) (\S+)/g)) {
      const moved = await Bun.spawn(['mv', from!, to!]).exited
      expect(moved).toBe(0)
    }
    const gateway = await startGateway({ home, port })
    expect(await gateway.stop()).toBe(0)
    expect(existsSync(`${db}.damaged`)).toBe(true)
  })

  test('a directory where the database belongs', async () => {
    const port = await freePort()
    const home = homeWithConfig({ gateway: { host: '127.0.0.1', port } })
    const db = join(home, '.xopcbot', 'xopcbot.db')
    mkdirSync(db)
    const result = await startOnce(home, port)
    expectClearStop(result, db)
    expect(result.stderr).toContain('not a regular file but a directory')
  })

  test('pairing commands report the same sentence and code', async () => {
    const home = homeWithConfig({})
    const db = join(home, '.xopcbot', 'xopcbot.db')
    writeFileSync(db, 'garbage '.repeat(1000))
    const result = await runCli(['pairing', 'list'], { home })
    expectClearStop(result, db)
  })

  test('under launchd the gateway exits 0 after the same sentence, since launchd restarts every non-zero exit', async () => {
    const home = tempHome()
    mkdirSync(join(home, '.xopcbot'), { recursive: true })
    const db = join(home, '.xopcbot', 'xopcbot.db')
    writeFileSync(db, 'garbage '.repeat(1000))
    const port = await freePort()
    const result = await startOnce(home, port, { XOPCBOT_SERVICE_MARKER: 'launchd' })
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(`The database ${db}`)
    expect(result.stderr).toContain('so that launchd does not start the gateway again')
    // systemd and Task Scheduler keep the code: systemd's unit lists it, Task Scheduler records it.
    const systemd = await startOnce(home, port, { XOPCBOT_SERVICE_MARKER: 'systemd' })
    expect(systemd.code).toBe(ExitCode.DATA)
  })
})

describe('the installed systemd unit does not restart on damaged data', () => {
  test('RestartPreventExitStatus lists 65 and 78', () => {
    const unit = renderUnit({
      name: 'xopcbot-gateway',
      description: 'xopcbot gateway',
      program: '/usr/bin/xopcbot',
      args: ['gateway'],
      workingDirectory: '/home/me',
      env: {},
      stopTimeoutMs: 5000,
      logDir: '/home/me/.xopcbot/logs',
    })
    const prevent = unit.split('\n').find((line) => line.startsWith('RestartPreventExitStatus='))!
    expect(ExitCode.DATA).toBe(65)
    expect(prevent.slice('RestartPreventExitStatus='.length).split(' ').map(Number)).toStrictEqual([65, 78])
    expect(parseUnit(unit).program).toBe('/usr/bin/xopcbot')
  })
})
