/**
 * Foundation figures, each next to its physical reference measured in the same run (npm run bench:foundation):
 * binary size, start-up, idle memory and GET /health throughput of the binary, against a compiled bare
 * Bun.serve and a compiled minimal Elysia app (bench/bare-server.ts, bench/elysia-server.ts).
 *   --quick    fewer starts and shorter load rounds
 * The gateway runs on the default config: no config file, logging at info.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { aim, ensureBinary, ensureReferences, gatewayHome, int, mb, median, printTable, quick, ratio, ROOT, rss, startGateway, startReference, stop, type Row, type Server } from './lib'
import { wrk } from './wrk'

const STARTS = quick ? 5 : 11
const ROUNDS = 3
const SECONDS = quick ? 2 : 4

const binary = ensureBinary()
const refs = ensureReferences()
const source = [process.execPath, join(ROOT, 'src/index.ts')]
const rows: Row[] = []
const running: Server[] = []

try {
  const size = statSync(binary).size
  const bareSize = statSync(refs.bare).size
  rows.push(aim(['binary size', mb(size), `bare compiled Bun.serve ${mb(bareSize)} → ${ratio(size, bareSize)}; aim ≤ 1.10×`], size / bareSize <= 1.1))

  // The first start creates the database; the usual start finds one. Interleaved, so a slow moment of a
  // shared machine hits every command alike.
  const homes = { binary: gatewayHome('start'), source: gatewayHome('start') }
  const first = { binary: 0, source: 0 }
  const times = { binary: [] as number[], source: [] as number[], bare: [] as number[] }
  let sourceProblem = ''
  for (let i = -1; i < STARTS; i++) {
    for (const [name, command] of [['binary', binary], ['source', source]] as const) {
      if (name === 'source' && sourceProblem) continue
      try {
        const { proc, readyMs } = await startGateway(command, homes[name])
        if (i < 0) first[name] = readyMs
        else times[name].push(readyMs)
        await stop(proc)
      } catch (error) {
        // Others edit src/ while benches run: a tree that does not start right now loses its rows, not the table.
        if (name === 'binary') throw error
        sourceProblem = (error as Error).message
      }
    }
    const bare = await startReference(refs.bare)
    if (i >= 0) times.bare.push(bare.readyMs)
    await stop(bare.proc)
  }
  const ofStarts = `(median of ${STARTS})`
  rows.push(['start → first 200 on /health, binary', `${median(times.binary).toFixed(0)} ms ${ofStarts}`, `bare compiled Bun.serve ${median(times.bare).toFixed(0)} ms`])
  rows.push(['  … first start (creates the database)', `${first.binary.toFixed(0)} ms`, ''])
  if (sourceProblem) rows.push(['start → first 200 on /health, source', 'failed', sourceProblem])
  else {
    rows.push(['start → first 200 on /health, source', `${median(times.source).toFixed(0)} ms ${ofStarts}`, 'bun src/index.ts'])
    rows.push(['  … first start (creates the database)', `${first.source.toFixed(0)} ms`, ''])
  }

  const gateway = await startGateway(binary, homes.binary)
  const bare = await startReference(refs.bare)
  const elysia = await startReference(refs.elysia)
  running.push(gateway, bare, elysia)
  await Bun.sleep(1000)
  const idle = { gateway: rss(gateway.proc.pid), bare: rss(bare.proc.pid), elysia: rss(elysia.proc.pid) }
  rows.push(
    aim(['idle RSS after start, binary', mb(idle.gateway), `bare compiled Bun.serve ${mb(idle.bare)} → ${ratio(idle.gateway, idle.bare)}, minimal Elysia ${mb(idle.elysia)} → ${ratio(idle.gateway, idle.elysia)}; aim ≤ 50 MB`], idle.gateway <= 50e6),
  )

  // Interleaved rounds, the median of each server's rounds.
  const servers = { bare, elysia, gateway }
  const samples = { bare: [] as number[], elysia: [] as number[], gateway: [] as number[] }
  const errors = { bare: 0, elysia: 0, gateway: 0 }
  const order = ['bare', 'elysia', 'gateway'] as const
  for (let round = 0; round < ROUNDS; round++) {
    // The order turns from round to round, so that no server always follows the same one.
    for (const name of order.map((_, i) => order[(i + round) % order.length]!)) {
      const result = await wrk(`${servers[name].url}/health`, { connections: 64, seconds: SECONDS })
      samples[name].push(result.rps)
      errors[name] += result.socketErrors + result.badResponses
    }
  }
  const rps = { bare: median(samples.bare), elysia: median(samples.elysia), gateway: median(samples.gateway) }
  const failed = (name: keyof typeof errors) => (errors[name] ? `; ${int(errors[name])} errors` : '')
  // Each round's own ratio shows how much a busy machine moved the figures.
  const perRound = samples.gateway.map((g, i) => g / samples.bare[i]!)
  const spread = `rounds ${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}×`
  const runs = `(median of ${ROUNDS} × ${SECONDS} s)`
  rows.push(['GET /health req/s (wrk -t2 -c64), bare Bun.serve', `${int(rps.bare)} ${runs}`, `reference, compiled${failed('bare')}`])
  rows.push(['GET /health req/s, minimal Elysia app', `${int(rps.elysia)} ${runs}`, `compiled; bare → ${ratio(rps.elysia, rps.bare)}${failed('elysia')}`])
  rows.push(
    aim(
      [
        'GET /health req/s, gateway (binary)',
        `${int(rps.gateway)} ${runs}`,
        `bare ${int(rps.bare)} → ${ratio(rps.gateway, rps.bare)} (${spread}), minimal Elysia ${int(rps.elysia)} → ${ratio(rps.gateway, rps.elysia)}; aim ≥ 0.85× bare${failed('gateway')}`,
      ],
      rps.gateway / rps.bare >= 0.85,
    ),
  )
  rows.push(['RSS after the load above, binary', mb(rss(gateway.proc.pid)), `bare compiled Bun.serve ${mb(rss(bare.proc.pid))}, minimal Elysia ${mb(rss(elysia.proc.pid))}`])
} finally {
  await Promise.all(running.map((server) => stop(server.proc)))
}

printTable('xopcbot foundation figures', rows)
