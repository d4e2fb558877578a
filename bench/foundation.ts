/**
 * Figures of the foundation, measured side by side in one run (no timed tests: this prints, it does not judge).
 *   npm run bench                 all figures
 *   npm run bench -- --quick      fewer rounds
 * Needs `wrk` (installed with apt-get when missing and running as root).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureBinary, freePort, median, printTable, ROOT } from './lib'
import { ensureWrk } from './wrk'

const quick = process.argv.includes('--quick')
const STARTS = quick ? 5 : 11
const ROUNDS = quick ? 2 : 5
const SECONDS = quick ? 2 : 4

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)

async function startGateway(command: string[], home: string, port: number) {
  const started = performance.now()
  const proc = Bun.spawn([...command, 'gateway', '--host', '127.0.0.1', '--port', String(port)], {
    env: { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1' },
    stdout: 'ignore',
    stderr: 'ignore',
  })
  const deadline = started + 15_000
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) break
    } catch {}
    if (performance.now() > deadline || proc.exitCode !== null) throw new Error(`${command.join(' ')} did not become healthy`)
    // Polling itself costs CPU that the starting gateway needs on a 2-core machine: 3 ms apart is a fair compromise.
    await Bun.sleep(3)
  }
  return { proc, readyMs: performance.now() - started }
}

async function stop(proc: Bun.Subprocess) {
  proc.kill('SIGTERM')
  await proc.exited
}

/** Median start-up time with an existing data directory (the usual case), and the very first start. */
async function startupMs(command: string[]): Promise<{ usual: number; first: number }> {
  const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-'))
  const first = await startGateway(command, home, await freePort())
  await stop(first.proc)
  const times: number[] = []
  for (let i = 0; i < STARTS; i++) {
    const { proc, readyMs } = await startGateway(command, home, await freePort())
    times.push(readyMs)
    await stop(proc)
  }
  rmSync(home, { recursive: true, force: true })
  return { usual: median(times), first: first.readyMs }
}

function wrk(wrkPath: string, url: string, seconds: number): number {
  const result = Bun.spawnSync([wrkPath, '-t1', '-c64', `-d${seconds}s`, url], { stdout: 'pipe', stderr: 'pipe' })
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout.toString())?.[1]
  if (!rps) throw new Error(`wrk failed: ${result.stderr.toString()}`)
  return Number(rps)
}

const wrkPath = ensureWrk()
const binary = ensureBinary()
const source = [process.execPath, join(ROOT, 'src/index.ts')]
const rows: [string, string, string][] = []

rows.push(['binary size', `${(statSync(binary).size / 1e6).toFixed(1)} MB (${(statSync(binary).size / 2 ** 20).toFixed(1)} MiB)`, 'aim ≤ 110 MB'])
for (const [name, command] of [['binary', [binary]], ['source', source]] as const) {
  const { usual, first } = await startupMs([...command])
  rows.push([`start → first 200 on /health, ${name}`, `${usual.toFixed(0)} ms (median of ${STARTS})`, 'aim ≤ 150 ms'])
  rows.push([`  … first start (creates the database)`, `${first.toFixed(0)} ms`, ''])
}

const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-'))
const gatewayPort = await freePort()
const gateway = (await startGateway([binary], home, gatewayPort)).proc
await Bun.sleep(1000)
const idleRss = rssKiB(gateway.pid)
rows.push(['idle RSS after start (binary)', `${(idleRss / 1024).toFixed(1)} MiB`, 'aim ≤ 60 MB'])

async function startBare(extra: string[]) {
  const port = await freePort()
  const proc = Bun.spawn([process.execPath, join(ROOT, 'bench/bare-server.ts'), String(port), ...extra], { stdout: 'ignore', stderr: 'inherit' })
  for (const deadline = Date.now() + 10_000; ; await Bun.sleep(10)) {
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok).catch(() => false)) break
    if (Date.now() > deadline) throw new Error('the bare server did not start')
  }
  return { proc, port }
}
const bare = await startBare([])
const bareWithId = await startBare(['--request-id'])

// Interleaved rounds, so that a slow moment of a shared machine hits every server alike.
const samples = { bare: [] as number[], bareWithId: [] as number[], gateway: [] as number[] }
for (let round = 0; round < ROUNDS; round++) {
  samples.bare.push(wrk(wrkPath, `http://127.0.0.1:${bare.port}/health`, SECONDS))
  samples.gateway.push(wrk(wrkPath, `http://127.0.0.1:${gatewayPort}/health`, SECONDS))
  samples.bareWithId.push(wrk(wrkPath, `http://127.0.0.1:${bareWithId.port}/health`, SECONDS))
}
const bareMedian = median(samples.bare)
const bareWithIdMedian = median(samples.bareWithId)
const gatewayMedian = median(samples.gateway)
const runs = `(median of ${ROUNDS} × ${SECONDS} s)`
rows.push(['/health req/s at 64 connections, bare Bun.serve', `${bareMedian.toFixed(0)} ${runs}`, 'reference'])
rows.push(['  … bare Bun.serve + X-Request-Id header', `${bareWithIdMedian.toFixed(0)} ${runs}`, ''])
rows.push(['/health req/s at 64 connections, gateway', `${gatewayMedian.toFixed(0)} ${runs}`, ''])
rows.push(['gateway / bare', `${(gatewayMedian / bareMedian).toFixed(2)}×`, 'aim ≥ 0.85×'])
rows.push(['gateway / bare + X-Request-Id', `${(gatewayMedian / bareWithIdMedian).toFixed(2)}×`, ''])
rows.push(['RSS after the load above (binary)', `${(rssKiB(gateway.pid) / 1024).toFixed(1)} MiB`, ''])

await stop(gateway)
await stop(bare.proc)
await stop(bareWithId.proc)
rmSync(home, { recursive: true, force: true })

printTable('xopcbot foundation figures', rows)
