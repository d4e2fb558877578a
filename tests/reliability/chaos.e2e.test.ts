import { afterAll, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { makeWorld, type World } from '../helpers/channels'
import { runCli, startGateway, tempHome, writeConfig } from '../helpers/gateway'
import { json, postJson } from '../helpers/http'
import { waitFor } from '../helpers/wait'

/**
 * Chaos under load (SPEC §12): while /api/message, /api/agent and a cron job run steadily, the gateway is restarted
 * three ways, killed with SIGKILL twice, its model and its Bot API fail and come back, and its disk fills up and is
 * freed. Then every accepted message was delivered exactly once or recorded failed with its reason, no run or
 * message is left in flight, and no process, lock or port is left behind.
 */

/** The data directory on a small tmpfs, so the disk can really fill; null (with why) where mounting is impossible. */
function mountSmallDisk(): { path: string } | { skip: string } {
  const path = join(tempHome(), 'data')
  mkdirSync(path, { recursive: true })
  const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', path])
  return mounted.exitCode === 0 ? { path } : { skip: `mounting a tmpfs failed: ${mounted.stderr.toString().trim() || `exit ${mounted.exitCode}`}` }
}

const disk = mountSmallDisk()
const skip = 'skip' in disk ? disk.skip : null
if (skip) console.log(`skipped: the chaos test (${skip})`)
const worlds: World[] = []
afterAll(() => {
  for (const w of worlds) w.stop()
  if (!('skip' in disk)) Bun.spawnSync(['umount', '-l', disk.path])
})

/** Gateway processes of this port: a command line that runs `gateway` with `--port <port>`, not a zombie. */
function gatewayProcesses(port: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const words = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0]
      if (state !== 'Z' && words.includes('gateway') && words.includes(String(port))) found.push(Number(entry))
    } catch {}
  }
  return found
}

test.skipIf(skip !== null)(
  'restarts ×3, kill -9 ×2, model and Bot API outages, a full disk — under load: nothing accepted is lost or doubled, nothing is left behind',
  async () => {
    const dataDir = (disk as { path: string }).path
    const env = { XOPCBOT_TEST_CHANNEL_BACKOFF_MS: '50,400' }
    const w = await makeWorld({ env, agent: { timeoutMs: 5000 } })
    worlds.push(w)
    writeConfig(w.home, { ...w.config, dataDir })
    const url = `http://127.0.0.1:${w.port}`
    const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, { home: w.home, env: { ...env, ...extra }, timeoutMs: 40_000 })
    const healthyPid = async (notPid?: number) =>
      waitFor(
        async () => {
          const status = await cli(['gateway', 'status', '--json'])
          const info = status.code === 0 ? JSON.parse(status.stdout) : null
          return info && info.pid !== notPid && (await fetch(`${url}/health`).then((r) => r.status === 200).catch(() => false)) ? (info.pid as number) : null
        },
        { what: 'a healthy gateway', timeoutMs: 30_000, intervalMs: 100 },
      )

    let gateway = await w.start()
    let pid = gateway.proc.pid

    // A cron job that runs every second through the agent and delivers to Telegram.
    const job = await json(await postJson(`${url}/api/cron/create`, { name: 'tick', schedule: '* * * * * *', mode: 'agent', message: 'cron-tick', channel: 'telegram', chat_id: '99' }))
    expect(job.job.id).toBeTruthy()

    // Steady load until `done`.
    const accepted = new Map<string, string>() // message_id → content
    const bigAccepted: string[] = []
    const agentStatuses = new Map<number | string, number>()
    let done = false
    let next = 0
    const messageLoad = Array.from({ length: 3 }, async () => {
      while (!done) {
        const content = `m-${next++}`
        const response = await postJson(`${url}/api/message`, { channel: 'telegram', chat_id: String(next % 5), content }).catch(() => null)
        if (response?.status === 202) accepted.set((await json(response)).message_id, content)
        else if (response) expect([503]).toContain(response.status)
        await Bun.sleep(15) // pacing of the load, not synchronisation
      }
    })
    const agentLoad = (async () => {
      while (!done) {
        const status = await postJson(`${url}/api/agent`, { message: 'hi', session: `chaos-${next % 3}` })
          .then((r) => r.status)
          .catch(() => 'refused' as const)
        agentStatuses.set(status, (agentStatuses.get(status) ?? 0) + 1)
        await Bun.sleep(20)
      }
    })()
    const settleSome = (count: number) => waitFor(() => accepted.size >= count, { what: `${count} accepted messages`, timeoutMs: 20_000 })
    /** How long an outage lasts while the load goes on (the scenario's length, not a wait for something). */
    const outage = (ms: number) => Bun.sleep(ms)

    // 1. restart: stop + start (this gateway does not allow SIGUSR1); the new one does (its environment is the CLI's).
    await settleSome(30)
    const restarted = await cli(['gateway', 'restart'], { XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' })
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(0)
    pid = await healthyPid(pid)

    // 2. the model fails for a while, then recovers.
    const echo = w.llm.fallback
    w.llm.fallback = () => ({ status: 500, body: '{"error":{"message":"overloaded"}}' })
    await settleSome(accepted.size + 20)
    await outage(1500)
    w.llm.fallback = echo

    // 3. restart: SIGUSR1 → a successor process takes over.
    const respawned = await cli(['gateway', 'restart'])
    expect(respawned.code, respawned.stdout + respawned.stderr).toBe(0)
    pid = await healthyPid(pid)

    // 4. the Bot API goes away and comes back.
    w.telegram.stop()
    await settleSome(accepted.size + 20)
    await outage(2000)
    w.telegram.start()

    // 5. restart --force: killed and started anew.
    const forced = await cli(['gateway', 'restart', '--force'])
    expect(forced.code, forced.stdout + forced.stderr).toBe(0)
    pid = await healthyPid(pid)

    // 6. kill -9, start again.
    process.kill(pid, 'SIGKILL')
    await waitFor(() => gatewayProcesses(w.port).length === 0, { what: 'the killed gateway to be gone' })
    gateway = await startGateway({ home: w.home, port: w.port, env })
    pid = gateway.proc.pid

    // 7. the disk fills up, then is freed. SQLite reuses its WAL file's space, so a few writes may still succeed on a
    // full disk: large messages (to the webhook channel) are sent until the gateway refuses one.
    await settleSome(accepted.size + 20)
    const filler = join(dataDir, 'filler')
    Bun.spawnSync(['dd', 'if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=64'])
    let refusals = 0
    for (let i = 0; i < 400 && refusals === 0; i++) {
      const response = await postJson(`${url}/api/message`, { channel: 'myapp', chat_id: 'big', content: `big-${i}-${'x'.repeat(60_000)}` })
      expect([202, 503]).toContain(response.status)
      if (response.status === 503) {
        refusals++
        expect((await json(response)).error.code).toBe('UNAVAILABLE')
      } else bigAccepted.push((await json(response)).message_id)
    }
    expect(refusals).toBe(1)
    await outage(1000)
    rmSync(filler)
    await settleSome(accepted.size + 20)

    // 8. kill -9 once more, start again, and let the load run a little on the last process.
    process.kill(pid, 'SIGKILL')
    await gateway.proc.exited
    gateway = await startGateway({ home: w.home, port: w.port, env })
    await settleSome(accepted.size + 30)
    await outage(3000)
    done = true
    await Promise.all([...messageLoad, agentLoad])

    // Every accepted message settles: delivered exactly once, or failed with its reason (and sent at most once).
    const final = await waitFor(
      async () => {
        const states = await Promise.all([...accepted.keys(), ...bigAccepted].map(async (id) => (await json(await fetch(`${url}/api/message/${id}`))).message))
        return states.every((m) => m && (m.state === 'delivered' || m.state === 'failed')) ? states.filter((m) => accepted.has(m.id)) : null
      },
      { what: 'every accepted message to settle', timeoutMs: 30_000, intervalMs: 250 },
    )
    const sent = w.telegram.sent.map((m) => m.text).filter((t) => t.startsWith('echo: m-'))
    for (const message of final) {
      const copies = sent.filter((t) => t === `echo: ${accepted.get(message.id)}`).length
      if (message.state === 'delivered') expect(copies, message.id).toBe(1)
      else {
        expect(message.error?.length ?? 0, `${message.id} failed without a reason`).toBeGreaterThan(10)
        expect(copies, message.id).toBeLessThanOrEqual(1)
      }
    }
    expect(new Set(sent).size).toBe(sent.length)
    const delivered = final.filter((m) => m.state === 'delivered').length
    expect(delivered).toBeGreaterThan(final.length / 2)
    // The agent answered or said why; it never failed with a 500.
    expect(agentStatuses.has(500)).toBe(false)
    expect(agentStatuses.get(200) ?? 0).toBeGreaterThan(0)

    // The cron job ran, and no run is left running once the job is off.
    await postJson(`${url}/api/cron/${job.job.id}/toggle`, { enabled: false })
    const runs = await waitFor(
      async () => {
        const { runs } = await json(await fetch(`${url}/api/cron/${job.job.id}/runs?limit=500`))
        return runs.every((r: { status: string }) => r.status !== 'running') ? runs : null
      },
      { what: 'no cron run left running' },
    )
    expect(runs.length).toBeGreaterThan(3)
    console.log(
      `chaos: ${final.length} messages accepted (${delivered} delivered, ${final.length - delivered} failed with a reason), ${bigAccepted.length} large ones before the disk was full, ` +
        `agent answers ${JSON.stringify(Object.fromEntries(agentStatuses))}, ${runs.length} cron runs`,
    )
    expect(runs.some((r: { status: string }) => r.status === 'ok')).toBe(true)

    // Nothing left behind: stop is clean, no process of this port, no lock, a sound database.
    const stopped = await cli(['gateway', 'stop'])
    expect(stopped.code).toBe(0)
    await waitFor(() => gatewayProcesses(w.port).length === 0, { what: 'no gateway process left' })
    const locks = existsSync(join(w.home, '.xopcbot', 'locks')) ? readdirSync(join(w.home, '.xopcbot', 'locks')).filter((f) => f.endsWith('.lock')) : []
    expect(locks).toEqual([])
    const db = new Database(join(dataDir, 'xopcbot.db'))
    try {
      expect((db.query('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check).toBe('ok')
      expect((db.query(`SELECT COUNT(*) AS n FROM inbound_messages WHERE state IN ('queued', 'processing', 'delivering')`).get() as { n: number }).n).toBe(0)
    } finally {
      db.close()
    }
  },
  90_000,
)
