/**
 * Message figures (npm run bench:messages): /api/message accepts per second at 64 connections (each one
 * stored durably before its 202), and the time from /api/message to delivery at the fake Telegram with an
 * instant fake LLM (p50/p99).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeLlm } from '../tests/fakes/llm'
import { startFakeTelegram } from '../tests/fakes/telegram'
import { ensureBinary, freePort, printTable, waitHealthy } from './lib'
import { ensureWrk } from './wrk'

const quick = process.argv.includes('--quick')
const SECONDS = quick ? 3 : 6
const LATENCY_SAMPLES = quick ? 100 : 300

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]!
const binary = ensureBinary()
const wrk = ensureWrk()
const llm = startFakeLlm()
llm.fallback = () => ({ text: 'ok' })
const telegram = startFakeTelegram()
const home = mkdtempSync(join(tmpdir(), 'xopcbot-bench-msg-'))
mkdirSync(join(home, '.xopcbot'))
writeFileSync(
  join(home, '.xopcbot', 'config.json'),
  JSON.stringify({
    agent: { model: 'fake/bench', concurrency: 16, maxRetries: 0, historyLimit: 10 },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } },
    channels: { telegram: { enabled: true, token: telegram.token, apiRoot: telegram.url } },
    logging: { level: 'warn' },
  }),
)
const port = await freePort()
const gateway = Bun.spawn([binary, 'gateway', '--host', '127.0.0.1', '--port', String(port)], { env: { PATH: process.env.PATH ?? '', HOME: home }, stdout: 'ignore', stderr: 'ignore' })
await waitHealthy(port)
const url = `http://127.0.0.1:${port}`

const script = join(home, 'post.lua')
writeFileSync(
  script,
  `counter = 0
request = function()
  counter = counter + 1
  local body = '{"channel":"telegram","chat_id":"' .. (counter % 50) .. '","content":"load ' .. counter .. '"}'
  return wrk.format("POST", "/api/message", {["Content-Type"] = "application/json"}, body)
end
`,
)
const run = Bun.spawnSync([wrk, '-t1', '-c64', `-d${SECONDS}s`, '-s', script, `${url}/`], { stdout: 'pipe', stderr: 'pipe' })
const accepts = Number(/Requests\/sec:\s+([\d.]+)/.exec(run.stdout.toString())?.[1] ?? NaN)
const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(run.stdout.toString())?.[1] ?? 0)

// Let the backlog drain, then measure end-to-end latency one message at a time.
for (const deadline = Date.now() + 120_000; Date.now() < deadline; await Bun.sleep(200)) {
  const queue = ((await (await fetch(`${url}/api/status`)).json()) as any).queue
  if (queue.queued + queue.processing === 0) break
}
const latencies: number[] = []
for (let i = 0; i < LATENCY_SAMPLES; i++) {
  const text = `latency ${i}`
  const started = performance.now()
  await fetch(`${url}/api/message`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'telegram', chat_id: 'lat', content: text }) })
  for (;;) {
    const sent = telegram.sent.findLast((m) => m.text === 'ok' && m.chat_id === 'lat' && m.at > started)
    if (sent) {
      latencies.push(sent.at - started)
      break
    }
    await Bun.sleep(0)
  }
}

gateway.kill('SIGTERM')
await gateway.exited
llm.stop()
telegram.stop()
rmSync(home, { recursive: true, force: true })

printTable('xopcbot message figures', [
  ['/api/message durable accepts/s at 64 connections', `${accepts.toFixed(0)} (${non2xx} not 202)`, `${SECONDS} s, while the queue is processed; aim ≥ 5000/s`],
  ['/api/message → delivered at Telegram, p50 / p99', `${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)} ms`, `${LATENCY_SAMPLES} sequential messages, instant fake LLM`],
])
