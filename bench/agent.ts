/**
 * Agent figures (npm run bench:agent), with the fake LLM answering at once:
 * the gateway's added latency per /api/agent turn (p50/p99, next to calling the fake directly), and turns
 * per second at 32 concurrent sessions.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeLlm } from '../tests/fakes/llm'
import { ensureBinary, freePort, printTable, waitHealthy } from './lib'

const quick = process.argv.includes('--quick')
const SEQUENTIAL = quick ? 200 : 1000
const SECONDS = quick ? 3 : 8
const CONCURRENT = 32

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const binary = ensureBinary()
const fake = startFakeLlm()
fake.fallback = () => ({ text: 'ok' })
const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-agent-'))
mkdirSync(join(home, '.xopcbot'))
writeFileSync(
  join(home, '.xopcbot', 'config.json'),
  JSON.stringify({ agent: { model: 'fake/bench', concurrency: CONCURRENT, maxRetries: 0, historyLimit: 10 }, providers: { fake: { type: 'openai-compatible', baseURL: `${fake.url}/v1` } } }),
)
const port = await freePort()
const gateway = Bun.spawn([binary, 'gateway', '--host', '127.0.0.1', '--port', String(port)], { env: { PATH: process.env.PATH ?? '', HOME: home }, stdout: 'ignore', stderr: 'ignore' })
await waitHealthy(port)
const url = `http://127.0.0.1:${port}`

async function direct(i: number) {
  const response = await fetch(`${fake.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: `hello ${i}` }] }),
  })
  await response.json()
}

async function turn(session: string, i: number) {
  const response = await fetch(`${url}/api/agent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: `hello ${i}`, session }) })
  const body = (await response.json()) as { status?: string }
  return response.status === 200 && body.status === 'ok'
}

// Warm both paths, then measure one request at a time, alternating, so both see the same machine.
for (let i = 0; i < 50; i++) {
  await direct(i)
  await turn(`warm-${i}`, i)
}
const directMs: number[] = []
const gatewayMs: number[] = []
for (let i = 0; i < SEQUENTIAL; i++) {
  let started = performance.now()
  await direct(i)
  directMs.push(performance.now() - started)
  started = performance.now()
  await turn(`seq-${i % 50}`, i)
  gatewayMs.push(performance.now() - started)
}

let done = 0
let failed = 0
const until = performance.now() + SECONDS * 1000
await Promise.all(
  Array.from({ length: CONCURRENT }, async (_, worker) => {
    for (let i = 0; performance.now() < until; i++) {
      if (await turn(`load-${worker}`, i).catch(() => false)) done++
      else failed++
    }
  }),
)

gateway.kill('SIGTERM')
await gateway.exited
fake.stop()
rmSync(home, { recursive: true, force: true })

const p50 = percentile(gatewayMs, 50) - percentile(directMs, 50)
const p99 = percentile(gatewayMs, 99) - percentile(directMs, 99)
printTable('xopcbot agent figures (fake LLM answering at once)', [
  ['fake LLM called directly, p50 / p99', `${percentile(directMs, 50).toFixed(2)} / ${percentile(directMs, 99).toFixed(2)} ms`, `${SEQUENTIAL} sequential requests`],
  ['/api/agent turn, p50 / p99', `${percentile(gatewayMs, 50).toFixed(2)} / ${percentile(gatewayMs, 99).toFixed(2)} ms`, 'stored in SQLite before the reply'],
  ['added by the gateway, p50 / p99', `${p50.toFixed(2)} / ${p99.toFixed(2)} ms`, 'aim ≤ 2 ms at p50'],
  [`turns/s at ${CONCURRENT} concurrent sessions`, `${(done / SECONDS).toFixed(0)} (${failed} errors)`, 'aim ≥ 2000/s, 0 errors'],
])
