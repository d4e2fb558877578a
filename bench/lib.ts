import { existsSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { hostFile } from '../build/targets'
import { findFreePort } from '../src/lifecycle/ports'

export const ROOT = resolve(import.meta.dir, '..')

export const freePort = findFreePort

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The host binary, built first when dist/ has none. */
export function ensureBinary(): string {
  const binary = join(ROOT, 'dist', hostFile())
  if (!existsSync(binary)) {
    console.error('building the binary …')
    const build = Bun.spawnSync([process.execPath, join(ROOT, 'build/build.ts'), '--no-smoke'], { stdout: 'ignore', stderr: 'inherit' })
    if (build.exitCode !== 0) throw new Error('build failed')
  }
  return binary
}

export async function waitHealthy(port: number, timeoutMs = 15_000) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200).catch(() => false)) return
    if (performance.now() > deadline) throw new Error(`port ${port} did not become healthy`)
    await Bun.sleep(2)
  }
}

export function printTable(title: string, rows: [string, string, string][]) {
  const width = Math.max(...rows.map((r) => r[0].length))
  const valueWidth = Math.max(...rows.map((r) => r[1].length))
  console.log(`${title} — ${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Bun ${Bun.version}`)
  for (const [name, value, note] of rows) console.log(`${name.padEnd(width)}  ${value.padEnd(valueWidth)}  ${note}`)
}
