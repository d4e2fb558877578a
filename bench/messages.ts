/**
 * Message figures (npm run bench:messages), the binary on a user's config (default agent settings, logging at
 * info) with an instant fake LLM and a fake Telegram: the time from /api/message to delivery at Telegram (one
 * message at a time, p50/p99), then /api/message accepts per second at 64 connections (each stored durably
 * before its 202) while the queue is processed.
 *   --quick    fewer samples, shorter load
 */
import { startFakeLlm } from '../tests/fakes/llm'
import { startFakeTelegram } from '../tests/fakes/telegram'
import { aim, cpuMs, ensureBinary, fakeConfig, gatewayHome, int, mb, percentile, printTable, quick, rss, startGateway, stop, type Row } from './lib'
import { MESSAGE_SCRIPT, wrk } from './wrk'

const SECONDS = quick ? 3 : 5
const LATENCY_SAMPLES = quick ? 100 : 300
const CONNECTIONS = 64

const binary = ensureBinary()
const llm = startFakeLlm()
llm.fallback = () => ({ text: 'ok' })
const telegram = startFakeTelegram()
const home = gatewayHome('msg', fakeConfig(llm.url, telegram))
const rows: Row[] = []
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined
let trim: Timer | undefined

try {
  gateway = await startGateway(binary, home)
  const url = gateway.url
  const depth = async () => ((await (await fetch(`${url}/api/status`)).json()) as { queue: Record<'queued' | 'processing' | 'delivered' | 'failed', number> }).queue

  const latencies: number[] = []
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const started = performance.now()
    const response = await fetch(`${url}/api/message`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'telegram', chat_id: 'lat', content: `latency ${i}` }) })
    if (response.status !== 202) throw new Error(`/api/message answered ${response.status}: ${await response.text()}`)
    for (const deadline = started + 10_000; ; await Bun.sleep(0)) {
      const sent = telegram.sent.findLast((m) => m.chat_id === 'lat' && m.at > started)
      if (sent) {
        latencies.push(sent.at - started)
        break
      }
      if (performance.now() > deadline) throw new Error('a message was not delivered within 10 s')
    }
  }
  rows.push([
    '/api/message → delivered at Telegram, p50 / p99',
    `${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)} ms`,
    `${LATENCY_SAMPLES} sequential messages, instant fake LLM`,
  ])

  // The fakes keep every call; under load that would grow without end.
  trim = setInterval(() => {
    llm.calls.length = 0
    telegram.sent.length = 0
    telegram.calls.length = 0
  }, 500)
  const before = await depth()
  const cpuBefore = cpuMs(gateway.proc.pid)
  const load = await wrk(url, { connections: CONNECTIONS, seconds: SECONDS, script: MESSAGE_SCRIPT })
  const cpuPerAccept = (cpuMs(gateway.proc.pid) - cpuBefore) / load.requests
  const after = await depth()
  const errors = load.socketErrors + load.badResponses
  const delivered = after.delivered - before.delivered
  rows.push(
    aim(
      [`/api/message durable accepts/s at ${CONNECTIONS} connections`, `${int(load.rps)} (${int(errors)} not 202)`, `${SECONDS} s; p50 / p99 ${load.p50Ms.toFixed(1)} / ${load.p99Ms.toFixed(1)} ms; aim ≥ 5,000/s`],
      load.rps >= 5000 && errors === 0,
    ),
  )
  rows.push(['  … answered and delivered meanwhile', `${int(delivered / SECONDS)}/s`, `${int(delivered)} delivered, ${int(after.failed - before.failed)} failed; ${int(after.queued + after.processing)} still queued at the end`])
  rows.push(['  … gateway CPU per accept (with the processing)', `${cpuPerAccept.toFixed(2)} ms`, 'user + system time of the gateway process ÷ accepts'])
  rows.push(['RSS after the load, binary', mb(rss(gateway.proc.pid)), ''])
} finally {
  clearInterval(trim)
  // A stop drains only the turns in flight; the backlog stays queued in the database, which goes with the home.
  if (gateway) await stop(gateway.proc)
  llm.stop()
  telegram.stop()
}

printTable('xopcbot message figures', rows)
// The fake Telegram's long polls hold timers for up to 30 s: nothing is left to wait for.
process.exit(0)
