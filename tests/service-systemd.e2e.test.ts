import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostFile } from '../build/targets'
import { freePort, ROOT, tempHome } from './helpers/gateway'
import { startUserManager } from './helpers/systemd'
import { waitFor } from './helpers/wait'

// The service install against a real systemd user manager, with the real compiled binary.
let binary = ''
const home = tempHome()
// Started before the tests are defined, so that a machine without a user manager skips them visibly.
const manager = await startUserManager(home)
const skip = 'skip' in manager ? manager.skip : null
if (skip) console.log(`skipped: the systemd service tests (${skip})`)

// The binary is built only when the tests will run.
beforeAll(async () => {
  if (skip === null) {
    const outdir = mkdtempSync(join(tmpdir(), 'xopcbot-bin-'))
    const build = Bun.spawnSync([process.execPath, join(ROOT, 'build/build.ts'), '--outdir', outdir, '--no-smoke'], { cwd: ROOT })
    if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`)
    binary = join(outdir, hostFile())
  }
}, 120_000)

afterAll(async () => {
  if (!('skip' in manager)) await manager.stop()
})

function env(): Record<string, string> {
  return (manager as { env: Record<string, string> }).env
}

async function cli(args: string[], command = [binary]) {
  const proc = Bun.spawn([...command, ...args], { env: env(), stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { stdout, stderr, code }
}

const serviceStatus = async () => JSON.parse((await cli(['gateway', 'service-status', '--json'])).stdout)
const health = (port: number) => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200).catch(() => false)
const unitFile = () => join(home, '.config/systemd/user/xopcbot-gateway.service')

describe('gateway install under a real systemd user manager', () => {
  test.skipIf(skip !== null)('install → running → kill -9 → restarted → restart (exit 75) → stop stays stopped → service-start → uninstall', async () => {
    const port = await freePort()
    const install = await cli(['gateway', 'install', '--runtime', 'binary', '--port', String(port), '--host', '127.0.0.1'])
    expect(install.stderr).toBe('')
    expect(install.code).toBe(0)
    expect(install.stdout).toContain('✅ Gateway service installed and running')
    expect(install.stdout).toContain(`URL: http://127.0.0.1:${port}`)

    const token = (await cli(['gateway', 'token'])).stdout.trim()
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const unit = readFileSync(unitFile(), 'utf8')
    expect(unit).not.toContain(token)
    expect(unit).toContain(`ExecStart="${join(home, '.xopcbot/bin/xopcbot')}" "gateway" "--config" "${join(home, '.xopcbot/config.json')}"`)
    expect(statSync(join(home, '.xopcbot/config.json')).mode & 0o777).toBe(0o600)
    // The installed copy is the binary we ran.
    const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')
    expect(digest(join(home, '.xopcbot/bin/xopcbot'))).toBe(digest(binary))

    const first = await serviceStatus()
    expect(first).toMatchObject({ installed: true, state: 'running', manager: 'systemd', program: join(home, '.xopcbot/bin/xopcbot') })
    const lock = JSON.parse((await cli(['gateway', 'status', '--json'])).stdout)
    expect(lock.pid).toBe(first.pid)
    expect(lock.supervised).toBe(true)
    expect(await health(port)).toBe(true)
    const text = (await cli(['gateway', 'service-status'])).stdout
    for (const line of ['📋 Service Status', 'Installed: Yes', 'Status: running', `PID: ${first.pid}`, 'Working Dir: ' + home, `URL: http://127.0.0.1:${port}`]) expect(text).toContain(line)

    // A crash: systemd starts it again.
    process.kill(first.pid, 'SIGKILL')
    const second = await waitFor(async () => {
      const s = await serviceStatus()
      return s.state === 'running' && s.pid && s.pid !== first.pid && (await health(port)) ? s : null
    }, { what: 'systemd to restart the gateway', timeoutMs: 20_000 })

    // A graceful restart: SIGUSR1 → exit 75 → systemd starts it again.
    const restart = await cli(['gateway', 'restart'])
    expect(restart.code).toBe(0)
    const third = await serviceStatus()
    expect(third.pid).not.toBe(second.pid)
    expect(restart.stdout).toContain(`PID: ${third.pid}`)

    // A stop stays stopped.
    expect((await cli(['gateway', 'stop'])).code).toBe(0)
    await Bun.sleep(3000) // longer than RestartSec: an observation window, nothing may come back in it
    const stopped = await serviceStatus()
    expect(stopped.state).toBe('stopped')
    expect(await health(port)).toBe(false)
    expect((await cli(['gateway', 'service-status'])).code).toBe(3)

    const started = await cli(['gateway', 'service-start'])
    expect(started.code).toBe(0)
    expect(await health(port)).toBe(true)

    const removed = await cli(['gateway', 'uninstall'])
    expect(removed.code).toBe(0)
    expect(existsSync(unitFile())).toBe(false)
    expect(await health(port)).toBe(false)
    expect(existsSync(join(home, '.xopcbot/config.json'))).toBe(true)
    expect(existsSync(join(home, '.xopcbot/xopcbot.db'))).toBe(true)
    expect((await serviceStatus()).installed).toBe(false)
  }, 90_000)

  test.skipIf(skip !== null)('install.sh installs the release binary (checksum verified) and starts the service; --uninstall removes it', async () => {
    const port = await freePort()
    const sha = createHash('sha256').update(readFileSync(binary)).digest('hex')
    const script = join(ROOT, 'install-scripts/install.sh')
    const wrong = await cli(['sh', script, '--sha256', '0'.repeat(64), binary], [])
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain('checksum mismatch')
    expect(existsSync(unitFile())).toBe(false)

    const installed = await cli(['sh', script, '--sha256', sha, binary, '--', '--port', String(port), '--host', '127.0.0.1'], [])
    expect(installed.stderr).toBe('')
    expect(installed.code).toBe(0)
    expect(installed.stdout).toContain('✅ Checksum verified')
    expect(installed.stdout).toContain('✅ Gateway service installed and running')
    expect(await health(port)).toBe(true)
    expect(readFileSync(unitFile(), 'utf8')).toContain(join(home, '.xopcbot/bin/xopcbot'))

    const uninstalled = await cli(['sh', script, '--uninstall'], [])
    expect(uninstalled.code).toBe(0)
    expect(existsSync(unitFile())).toBe(false)
    expect(existsSync(join(home, '.xopcbot/bin/xopcbot'))).toBe(false)
    expect(await health(port)).toBe(false)
  }, 90_000)

  test.skipIf(skip !== null)('--runtime node points the unit at the JS runtime and the CLI entry file', async () => {
    const port = await freePort()
    const result = await cli(['gateway', 'install', '--runtime', 'node', '--no-start', '--port', String(port)], [process.execPath, join(ROOT, 'src/index.ts')])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('installed (not started')
    expect(readFileSync(unitFile(), 'utf8')).toContain(`ExecStart="${process.execPath}" "${join(ROOT, 'src/index.ts')}" "gateway" "--config"`)
    expect((await serviceStatus()).state).toBe('stopped')
    expect((await cli(['gateway', 'uninstall'], [process.execPath, join(ROOT, 'src/index.ts')])).code).toBe(0)
  }, 60_000)
})
