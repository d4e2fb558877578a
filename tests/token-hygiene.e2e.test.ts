import { describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { maskToken } from '../src/cli/output'
import { tokenPathFor } from '../src/lifecycle/lock'
import { lockOf, lockPathOf, runCli, startGateway, tempHome, type RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

// SPEC §7: a token reaches the gateway by config, XOPCBOT_GATEWAY_TOKEN or --token-file; --token works but is
// masked wherever the gateway records its argv, and is never printed whole except by `gateway token`.

async function statusOf(url: string, token?: string) {
  return (await fetch(`${url}/api/status`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status
}

/** Only this token opens the API: none and a wrong one are refused (from loopback too). */
async function expectOnlyToken(url: string, token: string) {
  expect(await statusOf(url)).toBe(401)
  expect(await statusOf(url, `${token}x`)).toBe(401)
  expect(await statusOf(url, token)).toBe(200)
}

/** After a failed test: the gateway started and whichever successor holds the lock now. */
function killAll(gateway: RunningGateway, home: string) {
  gateway.proc.kill('SIGKILL')
  const successor = lockOf(home)
  try {
    if (successor && successor.pid !== gateway.proc.pid) process.kill(successor.pid, 'SIGKILL')
  } catch {}
}

function tokenFile(home: string, token: string, mode = 0o600) {
  const path = join(home, 'gateway-token')
  writeFileSync(path, `${token}\n`, { mode })
  chmodSync(path, mode)
  return path
}

/** The command line of a running process as the OS shows it to every user (Linux). */
const cmdlineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')

async function restartedBack(home: string, old: { pid: number }, url: string) {
  const restart = await runCli(['gateway', 'restart'], { home })
  expect(restart.code).toBe(0)
  const next = lockOf(home)!
  expect(next.pid).not.toBe(old.pid)
  await waitFor(async () => (await fetch(`${url}/health`).catch(() => null))?.ok, { what: 'the restarted gateway' })
  return next
}

describe('--token-file', () => {
  test('the API needs exactly the token of the file; status masks it; restart (stop + start) keeps it', async () => {
    const home = tempHome()
    const token = 'file-token-0123456789abcdefghij'
    const path = tokenFile(home, token)
    const gateway = await startGateway({ home, args: ['--token-file', path] })
    try {
      await expectOnlyToken(gateway.url, token)
      const lockText = readFileSync(lockPathOf(home), 'utf8')
      expect(lockText).not.toContain(token)
      expect(lockOf(home)!.argv).toContain(path)
      expect(gateway.output()).toContain(`Token: ${maskToken(token)}`)
      expect(gateway.output()).not.toContain('⚠️')

      const status = await runCli(['gateway', 'status'], { home })
      expect(status.stdout).toContain(`Token: ${maskToken(token)}`)
      expect(status.stdout).not.toContain(token)
      expect((await runCli(['gateway', 'token'], { home })).stdout.trim()).toBe(token)

      const next = await restartedBack(home, gateway.proc, gateway.url)
      expect(await gateway.proc.exited).toBe(0)
      await expectOnlyToken(gateway.url, token)
      expect(readFileSync(lockPathOf(home), 'utf8')).not.toContain(token)
      expect((await runCli(['gateway', 'stop'], { home })).stdout).toContain(`Gateway stopped (pid ${next.pid})`)
    } finally {
      killAll(gateway, home)
    }
  })

  test('a file others can read starts, with a warning', async () => {
    const home = tempHome()
    const path = tokenFile(home, 'shared-token-0123456789', 0o644)
    const gateway = await startGateway({ home, args: ['--token-file', path] })
    try {
      await waitFor(() => gateway.output().includes('Press Ctrl+C'), { what: 'the banner' })
      expect(gateway.output()).toContain(`⚠️ The token file ${path} can be read by other users; make it private: chmod 600 ${path}`)
      await expectOnlyToken(gateway.url, 'shared-token-0123456789')
    } finally {
      await gateway.stop()
    }
  })

  test('bad paths and values: one sentence that names the flag; exit 1 for the file, 2 for the command line', async () => {
    const home = tempHome()
    mkdirSync(join(home, 'a-directory'))
    writeFileSync(join(home, 'empty'), '', { mode: 0o600 })
    writeFileSync(join(home, 'short'), 'abc\n', { mode: 0o600 })
    writeFileSync(join(home, 'spaces'), 'two words here\n', { mode: 0o600 })
    const cases: [string[], number, string][] = [
      [['--token-file', join(home, 'missing')], 1, `--token-file: ${join(home, 'missing')} does not exist`],
      [['--token-file', join(home, 'a-directory')], 1, `--token-file: ${join(home, 'a-directory')} is not a file`],
      [['--token-file', join(home, 'empty')], 1, `--token-file: ${join(home, 'empty')} is empty`],
      [['--token-file', join(home, 'short')], 1, `--token-file: the token in ${join(home, 'short')} must be at least 8 characters`],
      [['--token-file', join(home, 'spaces')], 1, `--token-file: the token in ${join(home, 'spaces')} must be printable ASCII without spaces`],
      [['--token-file', ''], 2, '--token-file: needs a value'],
      [['--token', 'a-valid-token-123', '--token-file', join(home, 'short')], 2, '--token and --token-file cannot be used together'],
    ]
    for (const [args, code, sentence] of cases) {
      const result = await runCli(['gateway', '--port', '1', ...args], { home })
      expect({ args, code: result.code }).toEqual({ args, code })
      expect(result.stderr).toContain(`❌ ${sentence}`)
      expect(result.stderr).not.toContain('    at ')
    }
    expect(existsSync(lockPathOf(home))).toBe(false)
  })
})

describe('--token', () => {
  const secret = 'cli-secret-token-0123456789abcdef'

  async function withGateway(env: Record<string, string>, body: (gateway: RunningGateway, home: string) => Promise<void>) {
    const home = tempHome()
    const gateway = await startGateway({ home, args: ['--token', secret], env })
    try {
      await body(gateway, home)
    } finally {
      killAll(gateway, home)
    }
  }

  test('the banner warns; the lock records ***; status masks it and `gateway token` prints it', async () => {
    await withGateway({}, async (gateway, home) => {
      await waitFor(() => gateway.output().includes('Press Ctrl+C'), { what: 'the banner' })
      expect(gateway.output()).toContain(
        '⚠️ The token was given with --token: other users of this machine can see it in the process list (ps). Pass it with --token-file PATH or XOPCBOT_GATEWAY_TOKEN instead.',
      )
      expect(gateway.output()).not.toContain(secret)
      const lockText = readFileSync(lockPathOf(home), 'utf8')
      expect(lockText).not.toContain(secret)
      expect(lockOf(home)!.argv).toContain('***')
      // The token is kept beside the lock, private to the user, and goes with it.
      const kept = tokenPathFor(lockPathOf(home))
      expect(statSync(kept).mode & 0o777).toBe(0o600)

      const status = await runCli(['gateway', 'status', '--json'], { home })
      expect(JSON.parse(status.stdout).token).toBe(maskToken(secret))
      expect(status.stdout).not.toContain(secret)
      expect((await runCli(['gateway', 'token'], { home })).stdout.trim()).toBe(secret)
      expect((await runCli(['cron', 'list', '--json'], { home })).code).toBe(0)

      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
      expect(existsSync(kept)).toBe(false)
    })
  })

  test('restart (stop + start) brings it back with the same token, twice, without putting it on a command line', async () => {
    await withGateway({}, async (gateway, home) => {
      let previous: { pid: number } = gateway.proc
      for (let round = 0; round < 2; round++) {
        const next = await restartedBack(home, previous, gateway.url)
        await expectOnlyToken(gateway.url, secret)
        expect(readFileSync(lockPathOf(home), 'utf8')).not.toContain(secret)
        if (process.platform === 'linux') expect(cmdlineOf(next.pid)).not.toContain(secret)
        expect(JSON.parse((await runCli(['gateway', 'status', '--json'], { home })).stdout).token).toBe(maskToken(secret))
        previous = next
      }
      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
    })
  })

  test('restart --force and a respawn on SIGUSR1 keep the token too', async () => {
    await withGateway({ XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }, async (gateway, home) => {
      const respawned = await restartedBack(home, gateway.proc, gateway.url)
      expect(await gateway.proc.exited).toBe(0)
      await expectOnlyToken(gateway.url, secret)
      if (process.platform === 'linux') expect(cmdlineOf(respawned.pid)).not.toContain(secret)

      const forced = await runCli(['gateway', 'restart', '--force'], { home })
      expect(forced.code).toBe(0)
      await waitFor(async () => (await fetch(`${gateway.url}/health`).catch(() => null))?.ok, { what: 'the gateway after restart --force' })
      expect(lockOf(home)!.pid).not.toBe(respawned.pid)
      await expectOnlyToken(gateway.url, secret)
      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
    })
  })

  test('an invalid --token is refused without repeating it', async () => {
    const result = await runCli(['gateway', '--token', 'bad token value'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--token: must be printable ASCII without spaces')
    expect(result.stderr).not.toContain('bad token value')
  })

  test('--rotate refuses while the running gateway takes its token from --token', async () => {
    await withGateway({}, async (_gateway, home) => {
      const rotate = await runCli(['gateway', 'token', '--rotate'], { home })
      expect(rotate.code).toBe(1)
      expect(rotate.stderr).toContain('was started with --token')
      expect((await runCli(['gateway', 'stop'], { home })).code).toBe(0)
    })
  })
})
