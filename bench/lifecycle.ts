/**
 * Lifecycle figures of the compiled binary, each a whole command from spawn to exit (npm run bench:lifecycle):
 * `gateway logs --lines 100` on a 100 MB log (next to `tail -n 100` and the binary's own `--version`),
 * `--version` and `gateway status` (next to a compiled one-line hello), `gateway stop`, and `gateway restart`
 * until the gateway is healthy again, for each restart path.
 *   --quick    fewer runs
 */
import { mkdirSync, openSync, closeSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { aim, ensureBinary, ensureReferences, envOf, freePort, gatewayHome, median, printTable, quick, ratio, removeDir, startGateway, stop, type Row } from './lib'

const RUNS = quick ? 5 : 11
const RESTARTS = quick ? 3 : 5
const binary = ensureBinary()
const { hello } = ensureReferences()
const rows: Row[] = []

/** Wall time of a whole command, spawn to exit. */
function timed(command: string[], env: Record<string, string>, okCodes = [0]): number {
  const started = performance.now()
  const result = Bun.spawnSync(command, { env, stdout: 'ignore', stderr: 'pipe' })
  const ms = performance.now() - started
  if (!okCodes.includes(result.exitCode)) throw new Error(`${command.join(' ')} exited with ${result.exitCode}: ${result.stderr.toString()}`)
  return ms
}

/** A 100 MB log in the gateway's own format (JSON lines), written in 1 MiB pieces. */
function writeLog(path: string, bytes: number) {
  const fd = openSync(path, 'w', 0o600)
  const pad = 'x'.repeat(120)
  for (let written = 0, n = 0; written < bytes; ) {
    let piece = ''
    while (piece.length < 2 ** 20) piece += `{"ts":"2026-01-01T00:00:00.000Z","level":"info","tag":"http","msg":"GET /api/x 200","requestId":"r${n++}","status":200,"ms":0.4,"pad":"${pad}"}\n`
    written += writeSync(fd, piece)
  }
  closeSync(fd)
}

// logs, --version, status: whole commands next to their references, interleaved run by run.
{
  // The log is never rotated here (maxFileBytes above its size), so the API reads the same 100 MB file.
  const home = gatewayHome('logs', { gateway: { auth: { token: 'bench-token-0123456789' } }, logging: { maxFileBytes: 2 ** 30 } })
  const env = envOf(home)
  mkdirSync(join(home, '.xopcbot', 'logs'), { mode: 0o700 })
  const log = join(home, '.xopcbot', 'logs', 'gateway.log')
  writeLog(log, 100e6)
  const t = { logs: [] as number[], version: [] as number[], tail: [] as number[], hello: [] as number[], status: [] as number[], api: [] as number[] }
  for (let i = 0; i < RUNS; i++) {
    t.logs.push(timed([binary, 'gateway', 'logs', '--lines', '100'], env))
    t.version.push(timed([binary, '--version'], env))
    t.tail.push(timed(['tail', '-n', '100', log], env))
    t.hello.push(timed([hello], env))
  }
  const gateway = await startGateway(binary, home)
  try {
    for (let i = 0; i < RUNS; i++) {
      t.status.push(timed([binary, 'gateway', 'status'], env))
      const started = performance.now()
      const response = await fetch(`${gateway.url}/api/logs?lines=100`, { headers: { authorization: 'Bearer bench-token-0123456789' } })
      if (((await response.json()) as { logs: unknown[] }).logs.length !== 100) throw new Error('/api/logs did not return 100 lines')
      t.api.push(performance.now() - started)
    }
  } finally {
    await stop(gateway.proc)
  }
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)])) as Record<keyof typeof t, number>
  const runs = `(median of ${RUNS})`
  rows.push(
    aim(
      ['gateway logs --lines 100, 100 MB log', `${m.logs.toFixed(1)} ms ${runs}`, `tail -n 100 ${m.tail.toFixed(1)} ms → ${ratio(m.logs, m.tail)}, the binary's --version ${m.version.toFixed(1)} ms → ${ratio(m.logs, m.version)}; aim ≤ 50 ms`],
      m.logs <= 50,
    ),
  )
  rows.push(aim(['xopcbot --version', `${m.version.toFixed(1)} ms ${runs}`, `bare compiled hello ${m.hello.toFixed(1)} ms → ${ratio(m.version, m.hello)}; aim ≤ 25 ms`], m.version <= 25))
  rows.push(aim(['gateway status, gateway running', `${m.status.toFixed(1)} ms ${runs}`, `bare compiled hello ${m.hello.toFixed(1)} ms → ${ratio(m.status, m.hello)}; aim ≤ 60 ms`], m.status <= 60))
  rows.push(['GET /api/logs?lines=100, same log', `${m.api.toFixed(1)} ms ${runs}`, 'over HTTP, from a running gateway'])
  removeDir(home)
}

// stop on an idle gateway
{
  const times: number[] = []
  for (let i = 0; i < RESTARTS; i++) {
    const home = gatewayHome('stop')
    const { proc } = await startGateway(binary, home)
    times.push(timed([binary, 'gateway', 'stop'], envOf(home)))
    await stop(proc)
    removeDir(home)
  }
  rows.push(['gateway stop, idle gateway', `${median(times).toFixed(0)} ms (median of ${RESTARTS})`, "until it has exited, including the CLI's start-up"])
}

// restart → healthy, each path
const paths: [string, Record<string, string>, string[]][] = [
  ['SIGUSR1, respawn (new process)', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }, []],
  ['SIGUSR1, in process (XOPCBOT_NO_RESPAWN=1)', { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', XOPCBOT_NO_RESPAWN: '1' }, []],
  ['stop + start (SIGUSR1 not allowed)', {}, []],
  ['--force (kill + start)', {}, ['--force']],
]
for (const [name, extra, flags] of paths) {
  const home = gatewayHome('restart')
  const env = envOf(home, extra)
  const { proc } = await startGateway(binary, home, { port: freePort(), env: extra })
  const times: number[] = []
  try {
    // `restart` returns once the new gateway answers /health.
    for (let i = 0; i < RESTARTS; i++) times.push(timed([binary, 'gateway', 'restart', ...flags], env))
  } finally {
    // The gateway running now may be a detached process started by `restart`; removeDir kills what is left.
    Bun.spawnSync([binary, 'gateway', 'stop'], { env, stdout: 'ignore', stderr: 'ignore' })
    await stop(proc, 1000)
    removeDir(home)
  }
  rows.push([`gateway restart → healthy: ${name}`, `${median(times).toFixed(0)} ms (median of ${RESTARTS})`, ''])
}

printTable('xopcbot lifecycle figures', rows)
