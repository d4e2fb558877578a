/**
 * Lifecycle figures, measured with the compiled binary (npm run bench:lifecycle):
 * `gateway logs --lines 100` on a 100 MB log (next to `tail -n 100`), `gateway stop` on an idle gateway,
 * and `gateway restart` until the gateway is healthy again, for each restart path.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RotatingFile } from '../src/logging/rotating-file'
import { ensureBinary, freePort, median, printTable, waitHealthy } from './lib'

const binary = ensureBinary()
const RUNS = process.argv.includes('--quick') ? 3 : 7
const rows: [string, string, string][] = []

function timed(command: string[], env: Record<string, string>): number {
  const started = performance.now()
  const result = Bun.spawnSync(command, { env, stdout: 'ignore', stderr: 'pipe' })
  if (result.exitCode !== 0) throw new Error(`${command.join(' ')} failed: ${result.stderr.toString()}`)
  return performance.now() - started
}

// logs --lines 100 on a 100 MB log
{
  const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-logs-'))
  const path = join(home, '.xopcbot', 'logs', 'gateway.log')
  mkdirSync(join(home, '.xopcbot', 'logs'), { recursive: true })
  const file = new RotatingFile(path, { maxBytes: 200 * 1024 * 1024, maxFiles: 1 })
  const pad = 'x'.repeat(120)
  for (let n = 0; Bun.file(path).size < 100 * 1024 * 1024; n++) {
    for (let i = 0; i < 10_000; i++) file.write(`{"ts":"2026-01-01T00:00:00.000Z","level":"info","tag":"http","msg":"GET /api/x 200","n":${n * 10_000 + i},"pad":"${pad}"}`)
    file.flush()
  }
  file.close()
  const env = { PATH: process.env.PATH ?? '', HOME: home }
  const ours = median(Array.from({ length: RUNS }, () => timed([binary, 'gateway', 'logs', '--lines', '100'], env)))
  const tail = median(Array.from({ length: RUNS }, () => timed(['tail', '-n', '100', path], env)))
  const cold = median(Array.from({ length: RUNS }, () => timed([binary, '--version'], env)))
  rows.push([`gateway logs --lines 100, ${(Bun.file(path).size / 2 ** 20).toFixed(0)} MiB log`, `${ours.toFixed(0)} ms`, `median of ${RUNS}; the binary's own start-up (--version) is ${cold.toFixed(0)} ms`])
  rows.push(['tail -n 100 on the same file', `${tail.toFixed(1)} ms`, 'reference'])
  // The same log through the API of a running gateway.
  writeFileSync(join(home, '.xopcbot', 'config.json'), JSON.stringify({ gateway: { auth: { token: 'bench-token-0123456789' } } }))
  const port = await freePort()
  const gateway = await startGateway(home, port, {})
  const api: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now()
    const response = await fetch(`http://127.0.0.1:${port}/api/logs?lines=100`, { headers: { authorization: 'Bearer bench-token-0123456789' } })
    const body = (await response.json()) as { logs: unknown[] }
    if (body.logs.length !== 100) throw new Error('/api/logs did not return 100 lines')
    api.push(performance.now() - started)
  }
  gateway.kill('SIGTERM')
  await gateway.exited
  rows.push([`GET /api/logs?lines=100, same log`, `${median(api).toFixed(1)} ms`, `median of ${RUNS}, over HTTP`])
  rmSync(home, { recursive: true, force: true })
}

async function startGateway(home: string, port: number, env: Record<string, string>) {
  const proc = Bun.spawn([binary, 'gateway', '--host', '127.0.0.1', '--port', String(port)], { env: { PATH: process.env.PATH ?? '', HOME: home, ...env }, stdout: 'ignore', stderr: 'ignore' })
  await waitHealthy(port)
  return proc
}

// stop on an idle gateway
{
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-stop-'))
    const proc = await startGateway(home, await freePort(), {})
    times.push(timed([binary, 'gateway', 'stop'], { PATH: process.env.PATH ?? '', HOME: home }))
    await proc.exited
    rmSync(home, { recursive: true, force: true })
  }
  rows.push(['gateway stop, idle gateway', `${median(times).toFixed(0)} ms`, `median of ${RUNS}, including the CLI's start-up`])
}

// restart → healthy, each path
const paths: [string, Record<string, string>, string[]][] = [
  ['SIGUSR1, respawn (new process)', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }, []],
  ['SIGUSR1, in process (XOPCBOT_NO_RESPAWN=1)', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', XOPCBOT_NO_RESPAWN: '1' }, []],
  ['stop + start (SIGUSR1 not allowed)', {}, []],
  ['--force (kill + start)', {}, ['--force']],
]
for (const [name, env, flags] of paths) {
  const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-restart-'))
  const port = await freePort()
  const proc = await startGateway(home, port, env)
  const cliEnv = { PATH: process.env.PATH ?? '', HOME: home, ...env }
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now()
    timed([binary, 'gateway', 'restart', ...flags], cliEnv) // returns once the new gateway answers /health
    times.push(performance.now() - started)
  }
  Bun.spawnSync([binary, 'gateway', 'stop'], { env: cliEnv })
  proc.kill('SIGKILL')
  rmSync(home, { recursive: true, force: true })
  rows.push([`gateway restart → healthy: ${name}`, `${median(times).toFixed(0)} ms`, `median of ${RUNS}`])
}

printTable('xopcbot lifecycle figures', rows)
