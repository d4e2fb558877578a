/**
 * Agent figures (npm run bench:agent), the binary on a user's config (default agent settings, logging at info)
 * with the fake LLM answering at once: what the gateway adds to a turn at p50/p99 (one request at a time, next
 * to calling the fake directly), and turns per second at 32 connections with distinct sessions (wrk, its own
 * process).
 *   --quick    fewer requests, shorter load
 */
import { startFakeLlm } from '../tests/fakes/llm'
import { aim, cpuMs, ensureBinary, fakeConfig, gatewayHome, int, mb, percentile, printTable, quick, rss, startGateway, stop, type Row } from './lib'
import { AGENT_SCRIPT, wrk } from './wrk'

const SEQUENTIAL = quick ? 300 : 1000
const SECONDS = quick ? 3 : 5
const CONNECTIONS = 32

const binary = ensureBinary()
const fake = startFakeLlm()
fake.fallback = () => ({ text: 'ok' })
// The fake keeps every call; at thousands of turns a second that would grow without end.
const trim = setInterval(() => (fake.calls.length = 0), 500)
const home = gatewayHome('agent', fakeConfig(fake.url))
const rows: Row[] = []
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined

try {
  gateway = await startGateway(binary, home)
  const url = gateway.url
  const direct = async (i: number) => {
    const response = await fetch(`${fake.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: `hello ${i}` }] }),
    })
    await response.json()
  }
  const turn = async (session: string, i: number) => {
    const response = await fetch(`${url}/api/agent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: `hello ${i}`, session }) })
    const body = (await response.json()) as { status?: string }
    if (response.status !== 200 || body.status !== 'ok') throw new Error(`/api/agent answered ${response.status}: ${JSON.stringify(body)}`)
  }

  // Warm both paths, then one request at a time, alternating, so both see the same moment of the machine.
  for (let i = 0; i < 50; i++) {
    await direct(i)
    await turn(`warm-${i}`, i)
  }
  const directMs: number[] = []
  const turnMs: number[] = []
  for (let i = 0; i < SEQUENTIAL; i++) {
    let started = performance.now()
    await direct(i)
    directMs.push(performance.now() - started)
    started = performance.now()
    await turn(`seq-${i % 50}`, i)
    turnMs.push(performance.now() - started)
  }
  const p = (values: number[]) => [percentile(values, 50), percentile(values, 99)] as const
  const [d50, d99] = p(directMs)
  const [t50, t99] = p(turnMs)
  rows.push(['fake LLM called directly, p50 / p99', `${d50.toFixed(2)} / ${d99.toFixed(2)} ms`, `reference; ${SEQUENTIAL} sequential requests, alternating with the turns`])
  rows.push(['/api/agent turn, p50 / p99', `${t50.toFixed(2)} / ${t99.toFixed(2)} ms`, 'stored in SQLite before the reply; 50 sessions, growing histories'])
  rows.push(aim(['added by the gateway, p50 / p99', `${(t50 - d50).toFixed(2)} / ${(t99 - d99).toFixed(2)} ms`, `turn p50 ${t50.toFixed(2)} − fake LLM direct p50 ${d50.toFixed(2)} ms; aim ≤ 0.8 ms at p50`], t50 - d50 <= 0.8))

  const cpuBefore = cpuMs(gateway.proc.pid)
  const load = await wrk(url, { connections: CONNECTIONS, seconds: SECONDS, script: AGENT_SCRIPT })
  const cpuPerTurn = (cpuMs(gateway.proc.pid) - cpuBefore) / load.requests
  const errors = load.socketErrors + load.badResponses
  rows.push(
    aim(
      [`/api/agent turns/s at ${CONNECTIONS} connections`, `${int(load.rps)} (${int(errors)} errors)`, `${load.sessions} sessions, no two turns in flight on one; ${SECONDS} s; p50 / p99 ${load.p50Ms.toFixed(1)} / ${load.p99Ms.toFixed(1)} ms; aim ≥ 2,000/s, 0 errors`],
      load.rps >= 2000 && errors === 0,
    ),
  )
  rows.push(['  … gateway CPU per turn under that load', `${cpuPerTurn.toFixed(2)} ms`, 'user + system time of the gateway process ÷ turns'])
  rows.push(['RSS after the load, binary', mb(rss(gateway.proc.pid)), ''])
} finally {
  clearInterval(trim)
  if (gateway) await stop(gateway.proc)
  fake.stop()
}

printTable('xopcbot agent figures (fake LLM answering at once)', rows)
process.exit(0)
