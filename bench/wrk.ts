import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir, track } from './lib'

export interface WrkResult {
  requests: number
  rps: number
  p50Ms: number
  p99Ms: number
  /** connect/read/write errors and timeouts */
  socketErrors: number
  /** responses that were not what the script expects (agent: 200 with a session; message: 202), or non-2xx */
  badResponses: number
  /** sessions the agent script used (as many as connections, unless turns failed) */
  sessions: number
}

/** Lua for wrk: per-thread counters (`bad`, `made` globals), gathered by done() into one machine-readable line. */
const WRK_STATS = `
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local bad, made = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad") or 0); made = made + (t:get("made") or 0)
  end
  local e = summary.errors
  io.write(string.format("BENCH %d %d %.0f %.0f %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, bad, made))
end
`

/**
 * POST /api/agent with distinct sessions: a connection takes a session from the pool of idle ones (or makes a
 * new one) and puts it back when the reply names it, so no two turns in flight share a session, and the
 * sessions are as many as the connections.
 */
export const AGENT_SCRIPT = `${WRK_STATS}
bad, made, counter = 0, 0, 0
local idle = {}
function request()
  local session = table.remove(idle)
  if session == nil then made = made + 1; session = "load-" .. tid .. "-" .. made end
  counter = counter + 1
  return wrk.format("POST", "/api/agent", {["Content-Type"] = "application/json"}, '{"message":"hello ' .. counter .. '","session":"' .. session .. '"}')
end
function response(status, headers, body)
  local session = body:match('"session":"([^"]+)"')
  if status == 200 and session and body:find('"status":"ok"', 1, true) then table.insert(idle, session) else bad = bad + 1 end
end
`

/** POST /api/message to the telegram channel, 50 chats per wrk thread. */
export const MESSAGE_SCRIPT = `${WRK_STATS}
bad, counter = 0, 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/api/message", {["Content-Type"] = "application/json"}, '{"channel":"telegram","chat_id":"' .. tid .. '-' .. (counter % 50) .. '","content":"load ' .. counter .. '"}')
end
function response(status, headers, body)
  if status ~= 202 then bad = bad + 1 end
end
`

/** Defines no request()/response(), so wrk keeps its static request and its full speed. */
export const PLAIN_SCRIPT = WRK_STATS

/** wrk, the load generator (Debian's package): installed with apt-get when missing and running as root. */
export function ensureWrk(): string {
  const found = Bun.which('wrk')
  if (found) return found
  if (process.getuid?.() === 0 && Bun.which('apt-get')) {
    console.error('installing wrk with apt-get …')
    Bun.spawnSync(['apt-get', 'install', '-y', '-qq', 'wrk'], { stdout: 'ignore', stderr: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    const installed = Bun.which('wrk')
    if (installed) return installed
  }
  throw new Error('wrk is needed for the throughput figures: install it (Debian/Ubuntu: apt-get install wrk)')
}

let scriptDir: string | undefined
/**
 * Runs wrk in its own process, asynchronously: the fakes serving the gateway live in this process and must
 * keep answering while the load runs.
 */
export async function wrk(url: string, { connections, seconds, script = PLAIN_SCRIPT, threads = Math.min(2, connections) }: { connections: number; seconds: number; script?: string; threads?: number }): Promise<WrkResult> {
  scriptDir ??= tempDir('wrk')
  const file = join(scriptDir, `${Bun.hash(script).toString(36)}.lua`)
  if (!existsSync(file)) writeFileSync(file, script)
  const proc = track(Bun.spawn([ensureWrk(), `-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', file, url], { stdout: 'pipe', stderr: 'pipe' }))
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  const line = /^BENCH (.*)$/m.exec(out)?.[1]
  if (!line) throw new Error(`wrk failed: ${err || out}`)
  // wrk calls request() once on its first thread to check the script: that session is made but never used.
  const [requests, durationUs, p50, p99, socketErrors, non2xx, bad, sessions] = line.split(' ').map(Number) as number[]
  return { requests: requests!, rps: requests! / (durationUs! / 1e6), p50Ms: p50! / 1000, p99Ms: p99! / 1000, socketErrors: socketErrors!, badResponses: Math.max(non2xx!, bad!), sessions: Math.max(0, sessions! - 1) }
}

