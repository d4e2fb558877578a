/**
 * Smoke test of a built binary: `--version` prints the package version, and `gateway` started with a
 * temporary HOME on a free port answers /health, serves the Control UI from its bundle, and stops with exit 0
 * on SIGTERM.
 * Usage: bun build/smoke.ts dist/xopcbot-linux-x64
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pkg from '../package.json' with { type: 'json' }
import { findFreePort as freePort } from '../src/lifecycle/ports'

export async function smoke(binary: string): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'xopcbot-smoke-'))
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, NO_COLOR: '1' }
  try {
    const version = Bun.spawnSync([binary, '--version'], { env })
    const printed = version.stdout.toString().trim()
    if (version.exitCode !== 0 || printed !== pkg.version) throw new Error(`--version printed ${JSON.stringify(printed)} (exit ${version.exitCode}), expected ${pkg.version}`)

    const port = await freePort()
    const proc = Bun.spawn([binary, 'gateway', '--host', '127.0.0.1', '--port', String(port)], { env, stdout: 'pipe', stderr: 'pipe' })
    const deadline = Date.now() + 15_000
    let health: unknown
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/health`)
        if (response.status === 200) {
          health = await response.json()
          break
        }
      } catch {}
      await Bun.sleep(20)
    }
    if (!health) {
      proc.kill('SIGKILL')
      throw new Error(`no healthy /health within 15 s: ${await new Response(proc.stderr).text()}`)
    }
    // The Control UI comes from the bundle inside the executable: the page and every asset it names.
    const page = await fetch(`http://127.0.0.1:${port}/`)
    const html = await page.text()
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((match) => match[1]!)
    if (page.status !== 200 || !page.headers.get('content-security-policy') || assets.length === 0) {
      proc.kill('SIGKILL')
      throw new Error(`the Control UI page is not served (status ${page.status}, ${assets.length} assets)`)
    }
    for (const asset of assets) {
      const response = await fetch(`http://127.0.0.1:${port}${asset}`)
      await response.arrayBuffer()
      if (response.status !== 200) {
        proc.kill('SIGKILL')
        throw new Error(`the Control UI asset ${asset} answered ${response.status}`)
      }
    }
    proc.kill('SIGTERM')
    const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => 'timeout' as const)])
    if (code !== 0) {
      proc.kill('SIGKILL')
      throw new Error(`gateway did not stop cleanly on SIGTERM (exit ${code})`)
    }
    console.log(`smoke ok: ${binary} ${JSON.stringify(health)}`)
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  const binary = process.argv[2]
  if (!binary) {
    console.error('usage: bun build/smoke.ts <binary>')
    process.exit(2)
  }
  await smoke(resolve(binary)).catch((error) => {
    console.error(`smoke failed: ${error.message}`)
    process.exit(1)
  })
}
