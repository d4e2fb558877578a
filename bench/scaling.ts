/**
 * Scaling figures (npm run bench:scaling), the binary on a user's config with the instant fakes:
 * - /api/agent turns/s and /api/message accepts/s, with latency and the gateway's RSS, at 1, 8, 32 and 128
 *   concurrent clients (wrk; one gateway per kind, the levels in rising order);
 * - start → first 200 on /health and idle RSS with 1k / 10k / 100k stored messages and 10k cron jobs.
 * Stored data is seeded with bun:sqlite into the gateway's own database: a gateway first creates the schema
 * and one real message and job through the API; those rows are the templates of the seeded ones.
 *   --quick    shorter loads, fewer starts
 */
import { Database } from 'bun:sqlite'
import { copyFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startFakeLlm } from '../tests/fakes/llm'
import { startFakeTelegram } from '../tests/fakes/telegram'
import { ensureBinary, fakeConfig, gatewayHome, int, mb, median, printGrid, quick, rss, startGateway, stop, type Server } from './lib'
import { AGENT_SCRIPT, MESSAGE_SCRIPT, wrk, type WrkResult } from './wrk'

const LEVELS = [1, 8, 32, 128]
const SECONDS = quick ? 1 : 2
const STARTS = quick ? 3 : 5

const binary = ensureBinary()
const llm = startFakeLlm()
llm.fallback = () => ({ text: 'ok' })
const telegram = startFakeTelegram()
// The fakes keep every call; under load that would grow without end.
const trim = setInterval(() => {
  llm.calls.length = 0
  telegram.sent.length = 0
  telegram.calls.length = 0
}, 500)
const config = fakeConfig(llm.url, telegram)
let running: Server | undefined

/** Starts a gateway on `home` and stops it after `use`, whatever happens. */
async function withGateway<T>(home: string, use: (gateway: Server) => Promise<T>): Promise<T> {
  running = await startGateway(binary, home)
  try {
    return await use(running)
  } finally {
    await stop(running.proc)
    running = undefined
  }
}

const post = async (url: string, body: unknown) => {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`)
  return response.json() as Promise<any>
}

try {
  // ── load at 1 … 128 clients ──
  const loads: Record<'agent' | 'message', { result: WrkResult; rss: number }[]> = { agent: [], message: [] }
  for (const kind of ['agent', 'message'] as const) {
    await withGateway(gatewayHome(`scale-${kind}`, config), async (gateway) => {
      const script = kind === 'agent' ? AGENT_SCRIPT : MESSAGE_SCRIPT
      await wrk(gateway.url, { connections: 8, seconds: 1, script }) // warm-up, not reported
      for (const connections of LEVELS) loads[kind].push({ result: await wrk(gateway.url, { connections, seconds: SECONDS, script }), rss: rss(gateway.proc.pid) })
    })
  }
  const line = (label: string, kind: 'agent' | 'message', cell: (load: { result: WrkResult; rss: number }) => string) => [label, ...loads[kind].map(cell)]
  const latency = ({ result }: { result: WrkResult }) => `${result.p50Ms.toFixed(1)} / ${result.p99Ms.toFixed(1)}`
  const errors = ({ result }: { result: WrkResult }) => int(result.socketErrors + result.badResponses)
  printGrid(
    'xopcbot scaling with concurrent clients',
    ['concurrent clients (wrk connections)', ...LEVELS.map(String)],
    [
      line('/api/agent turns/s', 'agent', ({ result }) => int(result.rps)),
      line('  latency p50 / p99, ms', 'agent', latency),
      line('  errors', 'agent', errors),
      line('  gateway RSS after, MB', 'agent', ({ rss }) => (rss / 1e6).toFixed(1)),
      line('/api/message accepts/s', 'message', ({ result }) => int(result.rps)),
      line('  latency p50 / p99, ms', 'message', latency),
      line('  not 202', 'message', errors),
      line('  gateway RSS after, MB', 'message', ({ rss }) => (rss / 1e6).toFixed(1)),
    ],
    [
      `${SECONDS} s per level after a 1 s warm-up, one gateway per kind, levels in rising order. Agent: one session per connection,`,
      'no two turns in flight on one. Messages: the queue is processed meanwhile, so its backlog grows from level to level.',
    ],
  )
  console.log()

  // ── start-up and memory with stored data ──
  const home = gatewayHome('scale-data', config)
  const db = () => new Database(join(home, '.xopcbot', 'xopcbot.db'), { strict: true })
  // One real message and one real job, through the API: their rows are the templates.
  await withGateway(home, async (gateway) => {
    await post(`${gateway.url}/api/message/sync`, { channel: 'telegram', chat_id: 'tpl', content: 'template message' })
    await post(`${gateway.url}/api/cron/create`, { schedule: '0 * * * *', message: 'template job' })
  })
  const templates = (() => {
    const d = db()
    const inbound = d.query('SELECT * FROM inbound_messages').get() as Record<string, unknown>
    const session = d.query('SELECT * FROM sessions').get() as Record<string, unknown>
    const history = d.query('SELECT * FROM session_messages ORDER BY id').all() as Record<string, unknown>[]
    const job = d.query('SELECT * FROM cron_jobs').get() as Record<string, unknown>
    if (!inbound || !session || !history.length || !job) throw new Error('the template rows were not stored')
    d.run('PRAGMA foreign_keys = ON')
    d.run('DELETE FROM inbound_messages')
    d.run('DELETE FROM sessions')
    d.run('DELETE FROM cron_jobs')
    d.close()
    return { inbound, session, history, job }
  })()

  /** Inserts `row` with `changes` applied, into `table`, naming the columns of the real row. */
  const inserter = (d: Database, table: string, template: Record<string, unknown>, skip: string[] = []) => {
    const columns = Object.keys(template).filter((c) => !skip.includes(c))
    const insert = d.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => `$${c}`).join(', ')})`)
    return (changes: Record<string, unknown>) => insert.run({ ...Object.fromEntries(columns.map((c) => [c, template[c]])), ...changes } as any)
  }
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString()

  /** Messages [from, to): each an inbound message, delivered, and its turn's rows in its chat's session (10 a chat). */
  function seedMessages(from: number, to: number) {
    const d = db()
    const { inbound, session, history } = templates
    const chatOf = (i: number) => `seed-${Math.floor(i / 10)}`
    const keyOf = (i: number) => String(session.key).replace(String(inbound.chat_id), chatOf(i))
    const addInbound = inserter(d, 'inbound_messages', inbound, ['seq'])
    const addSession = inserter(d, 'sessions', session)
    const addMessage = inserter(d, 'session_messages', history[0]!, ['id'])
    const text = String(inbound.content)
    d.transaction(() => {
      for (let i = from; i < to; i++) {
        const content = `seeded message ${i}`
        if (i % 10 === 0 || i === from) addSession({ key: keyOf(i), chat_id: chatOf(i), created_at: at(i), updated_at: at(i + 9) })
        addInbound({ id: `msg_seed${String(i).padStart(19, '0')}`, chat_id: chatOf(i), content, created_at: at(i), updated_at: at(i) })
        for (const row of history) addMessage({ ...row, id: undefined, session_key: keyOf(i), content: String(row.content).replaceAll(text, content), message: String(row.message).replaceAll(text, content), created_at: at(i) })
      }
    })()
    d.close()
  }

  const patterns = ['0 * * * *', '*/5 * * * *', '0 8 * * 1-5', '@daily', '30 17 * * *', '0 0 1 * *']
  function seedJobs(path: string, count: number) {
    const d = new Database(path, { strict: true })
    const addJob = inserter(d, 'cron_jobs', templates.job)
    d.transaction(() => {
      for (let i = 0; i < count; i++) {
        addJob({ id: `job_seed${String(i).padStart(8, '0')}`, name: `job ${i}`, schedule: patterns[i % patterns.length], timezone: i % 2 ? 'Europe/Berlin' : 'UTC', message: `job ${i}`, created_at: at(i), updated_at: at(i) })
      }
    })()
    d.close()
  }

  const get = async (url: string) => (await fetch(url)).json() as Promise<any>
  /** The gateway reads the seeded rows as its own: the counts match, a seeded session and message read back. */
  async function checkSeeded({ url }: Server, messages: number, jobs: number) {
    const sessions = await get(`${url}/api/sessions?limit=1`)
    const status = await get(`${url}/api/status`)
    const problems = [
      sessions.total !== messages / 10 && `${sessions.total} sessions, not ${messages / 10}`,
      status.cron?.jobs !== jobs && `${status.cron?.jobs} cron jobs, not ${jobs}`,
      status.queue?.delivered !== messages && `${status.queue?.delivered} delivered messages, not ${messages}`,
    ]
    if (messages) {
      const session = await get(`${url}/api/sessions/${encodeURIComponent(sessions.sessions[0]?.key ?? '-')}`)
      if (session.session?.messages?.length !== 10 * templates.history.length) problems.push(`a seeded session reads back as ${JSON.stringify(session).slice(0, 200)}`)
    }
    const found = problems.filter(Boolean)
    if (found.length) throw new Error(`the seeded data is not what the gateway reads: ${found.join('; ')}`)
  }

  /** Median start → first 200 of STARTS starts; the RSS of the last one after a second of idling. */
  async function measureStarts(on: string, messages: number, jobs: number) {
    const times: number[] = []
    let idle = 0
    for (let i = 0; i < STARTS; i++) {
      await withGateway(on, async (gateway) => {
        times.push(gateway.readyMs)
        if (i === STARTS - 1) {
          await Bun.sleep(1000)
          idle = rss(gateway.proc.pid)
          await checkSeeded(gateway, messages, jobs)
        }
      })
    }
    const size = statSync(join(on, '.xopcbot', 'xopcbot.db')).size
    return [`${median(times).toFixed(0)} ms`, mb(idle), mb(size)]
  }

  const jobsHome = gatewayHome('scale-jobs', config)
  copyFileSync(join(home, '.xopcbot', 'xopcbot.db'), join(jobsHome, '.xopcbot', 'xopcbot.db'))
  const data: string[][] = [['nothing stored', ...(await measureStarts(home, 0, 0))]]
  let stored = 0
  for (const count of [1_000, 10_000, 100_000]) {
    seedMessages(stored, count)
    stored = count
    data.push([`${int(count)} messages (${int(count / 10)} chats)`, ...(await measureStarts(home, count, 0))])
  }
  seedJobs(join(jobsHome, '.xopcbot', 'xopcbot.db'), 10_000)
  data.push(['10,000 cron jobs (enabled)', ...(await measureStarts(jobsHome, 0, 10_000))])
  printGrid('xopcbot scaling with stored data', ['stored data', `start → first 200 (median of ${STARTS})`, 'idle RSS', 'database'], data, [
    'A message: its inbound row (delivered, with its reply) and the user and assistant rows of its session, 10 messages a chat.',
    'Seeded with bun:sqlite from rows a gateway stored through the API; idle RSS one second after the last start.',
  ])
} finally {
  clearInterval(trim)
  if (running) await stop(running.proc)
  llm.stop()
  telegram.stop()
}
// The fake Telegram's long polls hold timers for up to 30 s: nothing is left to wait for.
process.exit(0)
