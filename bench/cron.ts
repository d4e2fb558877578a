/**
 * Cron figures (npm run bench:cron), the binary on a user's config with an instant fake LLM: the firing delay
 * (scheduled second → run start, as the run records it) of every-second agent jobs, p50/p99. Start-up with
 * 10,000 jobs is in the scaling table (bench/scaling.ts).
 *   --quick    a shorter watch
 */
import { startFakeLlm } from '../tests/fakes/llm'
import { ensureBinary, fakeConfig, gatewayHome, percentile, printTable, quick, startGateway, stop, type Row } from './lib'

const FIRING_SECONDS = quick ? 5 : 10
const JOBS = 50

const binary = ensureBinary()
const llm = startFakeLlm()
llm.fallback = () => ({ text: 'ok' })
const home = gatewayHome('cron', fakeConfig(llm.url))
const rows: Row[] = []
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined

try {
  gateway = await startGateway(binary, home)
  const api = async (path: string, body?: unknown) => {
    const response = await fetch(`${gateway!.url}/api/cron${path}`, body ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {})
    if (!response.ok) throw new Error(`/api/cron${path} answered ${response.status}: ${await response.text()}`)
    return (await response.json()) as any
  }
  const ids: string[] = []
  for (let i = 0; i < JOBS; i++) ids.push((await api('/create', { schedule: '* * * * * *', message: `tick ${i}` })).job.id)
  await Bun.sleep(FIRING_SECONDS * 1000)
  const runs = (await Promise.all(ids.map((id) => api(`/${id}/runs?limit=500`)))).flatMap((answer) => answer.runs as { started_at: string; status: string }[])
  const delays = runs.map((run) => Date.parse(run.started_at) % 1000)
  const failed = runs.filter((run) => run.status === 'failed').length
  rows.push([
    `firing delay, ${JOBS} every-second jobs for ${FIRING_SECONDS} s, p50 / p99`,
    `${percentile(delays, 50)} / ${percentile(delays, 99)} ms`,
    `${runs.length} runs (${failed} failed), agent turns with the instant fake LLM`,
  ])
} finally {
  if (gateway) await stop(gateway.proc)
  llm.stop()
}

printTable('xopcbot cron figures', rows)
process.exit(0)
