/**
 * Cron figures (npm run bench:cron): start-up time and memory with 10,000 enabled jobs, and the firing delay
 * (scheduled second → run start) of every-second jobs, p50/p99.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from '../src/agent/agent'
import { SessionStore } from '../src/agent/sessions'
import { Config } from '../src/config/schema'
import { CronJobs, CronRunner, CronService } from '../src/cron/service'
import { createLogger } from '../src/logging/logger'
import { openDatabase } from '../src/storage/db'
import { startFakeLlm } from '../tests/fakes/llm'
import { printTable } from './lib'

const quick = process.argv.includes('--quick')
const JOBS = 10_000
const FIRING_SECONDS = quick ? 15 : 60
const EVERY_SECOND_JOBS = 50

const llm = startFakeLlm()
llm.fallback = () => ({ text: 'ok' })
const config = Config.parse({ agent: { model: 'fake/bench', maxRetries: 0, concurrency: 16, historyLimit: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } } })
const { log } = createLogger({ level: 'error', console: false })
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]!
const rss = () => process.memoryUsage().rss / 2 ** 20

function service(dir: string) {
  const db = openDatabase(join(dir, 'xopcbot.db'))
  const jobs = new CronJobs({ db, log, defaultTimezone: 'UTC', sender: () => undefined })
  const agent = new Agent({ config, env: {}, store: new SessionStore(db), log })
  const runner = new CronRunner({ jobs, agent, sender: () => undefined, log })
  return { db, cron: new CronService({ jobs, runner }) }
}

// 10,000 jobs stored, then a fresh service schedules them all, as a start of the gateway would.
const dir = mkdtempSync(join(tmpdir(), 'xopcbot-bench-cron-'))
const first = service(dir)
const patterns = ['0 * * * *', '*/5 * * * *', '0 8 * * 1-5', '@daily', '30 17 * * *', '0 0 1 * *']
first.db.transaction(() => {
  for (let i = 0; i < JOBS; i++) first.cron.create({ schedule: patterns[i % patterns.length]!, message: `job ${i}`, timezone: i % 2 ? 'Europe/Berlin' : 'UTC' })
})()
first.cron.stop()
first.db.close()
Bun.gc(true)
const rssBefore = rss()
const second = service(dir)
const started = performance.now()
second.cron.start()
const loadMs = performance.now() - started
Bun.gc(true)
const rssAfter = rss()
second.cron.stop()
second.db.close()

// Firing delay of every-second jobs.
const fire = service(mkdtempSync(join(tmpdir(), 'xopcbot-bench-cron-')))
fire.cron.start()
const ids = Array.from({ length: EVERY_SECOND_JOBS }, (_, i) => fire.cron.create({ schedule: '* * * * * *', message: `tick ${i}` }).id)
await Bun.sleep(FIRING_SECONDS * 1000)
fire.cron.stop()
await fire.cron.idle(5000)
const delays = ids.flatMap((id) => fire.cron.runs(id, 1000).map((run) => Date.parse(run.started_at) % 1000))
llm.stop()

printTable('xopcbot cron figures', [
  [`start-up with ${JOBS.toLocaleString('en')} enabled jobs`, `${loadMs.toFixed(0)} ms, +${(rssAfter - rssBefore).toFixed(1)} MiB RSS`, 'aim < 1 s'],
  [`firing delay, ${EVERY_SECOND_JOBS} every-second jobs for ${FIRING_SECONDS} s, p50 / p99`, `${percentile(delays, 50)} / ${percentile(delays, 99)} ms (${delays.length} runs)`, 'aim p99 < 50 ms'],
])
