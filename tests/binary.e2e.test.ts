import { beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBinary, freePort, ROOT, runCli, startGateway, type Runner } from './helpers/gateway'
import { json } from './helpers/http'
import { waitFor } from './helpers/wait'

// The real build script compiles the binary into a temporary directory; the tests then run that file.
let binary: Runner

beforeAll(() => {
  binary = buildBinary()
}, 120_000)

describe('the compiled binary', () => {
  test('is one executable file that prints its version', async () => {
    expect(statSync(binary[0]!).mode & 0o111).not.toBe(0)
    const { version } = (await Bun.file(join(ROOT, 'package.json')).json()) as { version: string }
    const result = await runCli(['--version'], { runner: binary })
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(version)
  })

  test('runs the gateway: /health answers, a second gateway on the port fails with exit 1, SIGTERM exits 0', async () => {
    const gateway = await startGateway({ runner: binary })
    try {
      const body = await json(await fetch(`${gateway.url}/health`))
      expect(body.status).toBe('healthy')
      const second = await runCli(['gateway', '--host', '127.0.0.1', '--port', String(gateway.port)], { runner: binary })
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(`❌ Port ${gateway.port} is already in use. Use --force to kill existing process.`)
    } finally {
      expect(await gateway.stop('SIGTERM')).toBe(0)
    }
  })

  test('refuses gateway install --runtime node (that runs a checkout with Bun), before writing anything', async () => {
    const home = mkdtempSync(join(tmpdir(), 'xopcbot-home-'))
    const result = await runCli(['gateway', 'install', '--runtime', 'node', '--no-start'], { runner: binary, home })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('--runtime node runs the source of a checkout with Bun, but this is the compiled executable: use --runtime binary')
    expect(existsSync(join(home, '.xopcbot'))).toBe(false)
  })

  test('does not read .env from the working directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xopcbot-cwd-'))
    // Loaded, this .env would make the gateway stop at once with a config error (exit 78).
    await Bun.write(join(dir, '.env'), 'XOPCBOT_GATEWAY_PORT=notaport\n')
    const port = await freePort()
    const proc = Bun.spawn([...binary, 'gateway', '--host', '127.0.0.1', '--port', String(port)], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir }, stdout: 'pipe', stderr: 'pipe' })
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}: ${await new Response(proc.stderr).text()}`)
      return (await fetch(`http://127.0.0.1:${port}/health`)).ok
    }, { what: 'the binary gateway' })
    proc.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
  })
})
