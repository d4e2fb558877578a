import { afterAll, describe, expect, test } from 'bun:test'
import { startFakeLlm } from './fakes/llm'
import { childEnv, freePort, fromSource, homeWithConfig, runCli, startGateway, type RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const llm = startFakeLlm()
afterAll(() => llm.stop())

function home(extra: Record<string, unknown> = {}) {
  return homeWithConfig({ agent: { model: 'fake/echo', maxRetries: 0 }, providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } }, ...extra })
}

const runsOf = async (g: RunningGateway, id: string) => (await json(await fetch(`${g.url}/api/cron/${id}/runs?limit=500`))).runs as any[]
const create = async (g: RunningGateway, body: unknown) => {
  const response = await postJson(`${g.url}/api/cron/create`, body)
  expect(response.status).toBe(201)
  return (await json(response)).job
}

describe('cron jobs', () => {
  // Real time, in a real gateway: a job fires and its runs are recorded; toggle, trigger and delete over HTTP.
  // The timing itself (three ticks, nothing fires while off, resuming) is in tests/cron-scheduler.test.ts.
  test('create → list with next_run; every second it fires and records runs; toggle off; trigger runs once; delete → 404', async () => {
    const gateway = await startGateway({ home: home() })
    try {
      const job = await create(gateway, { name: 'tick', schedule: '* * * * * *', message: 'tick' })
      expect(job).toMatchObject({ name: 'tick', schedule: '* * * * * *', timezone: 'UTC', enabled: true, mode: 'agent' })
      const listed = (await json(await fetch(`${gateway.url}/api/cron`))).jobs
      expect(listed).toHaveLength(1)
      expect(Date.parse(listed[0].next_run) - Date.now()).toBeLessThanOrEqual(1100)

      await waitFor(async () => (await runsOf(gateway, job.id)).some((r) => r.status === 'ok'), { what: 'a run' })
      const runs = await runsOf(gateway, job.id)
      // The newest may still be running; the oldest has finished.
      expect(runs.at(-1)).toMatchObject({ status: 'ok', trigger: 'schedule', reply: 'echo: tick' })

      const off = await json(await postJson(`${gateway.url}/api/cron/${job.id}/toggle`, { enabled: false }))
      expect(off.job).toMatchObject({ enabled: false, next_run: null })
      await waitFor(async () => (await runsOf(gateway, job.id)).every((r) => r.status !== 'running'), { what: 'quiet' })
      const quiet = (await runsOf(gateway, job.id)).length
      const triggered = await json(await postJson(`${gateway.url}/api/cron/trigger`, { job_id: job.id }))
      const runId: string = triggered.run_id
      expect(runId).toMatch(/^run_/)
      expect(triggered.message).toBe('Task triggered')
      const manual = await waitFor(async () => (await runsOf(gateway, job.id)).find((r) => r.id === runId && r.status === 'ok'), { what: 'the manual run' })
      expect(manual.trigger).toBe('manual')
      expect((await runsOf(gateway, job.id)).length).toBe(quiet + 1)

      expect((await json(await fetch(`${gateway.url}/api/cron/${job.id}`, { method: 'DELETE' }))).status).toBe('ok')
      for (const response of [
        await fetch(`${gateway.url}/api/cron/${job.id}`, { method: 'DELETE' }),
        await postJson(`${gateway.url}/api/cron/${job.id}/toggle`),
        await fetch(`${gateway.url}/api/cron/${job.id}/runs`),
        await postJson(`${gateway.url}/api/cron/trigger`, { job_id: job.id }),
      ]) {
        expect(response.status).toBe(404)
        expect((await json(response)).error.code).toBe('JOB_NOT_FOUND')
      }
    } finally {
      await gateway.stop()
    }
  }, 30_000)

  test('jobs survive a restart; a one-shot whose time passed while the gateway was down runs exactly once', async () => {
    const dir = home()
    let gateway = await startGateway({ home: dir })
    // croner works in whole seconds
    const at = new Date(Math.ceil((Date.now() + 2500) / 1000) * 1000).toISOString()
    const oneShot = await create(gateway, { schedule: at, message: 'wake up' })
    const weekly = await create(gateway, { schedule: '0 9 * * 1', message: 'standup', timezone: 'Europe/Berlin' })
    expect(oneShot.next_run).toBe(at)
    expect(await gateway.stop()).toBe(0)
    await waitFor(() => Date.now() > Date.parse(at) + 200, { what: 'the one-shot time to pass', timeoutMs: 5000 })

    gateway = await startGateway({ home: dir })
    const run = await waitFor(async () => (await runsOf(gateway, oneShot.id)).find((r) => r.status === 'ok'), { what: 'the catch-up run' })
    expect(run).toMatchObject({ trigger: 'catch-up', reply: 'echo: wake up' })
    const jobs = (await json(await fetch(`${gateway.url}/api/cron`))).jobs
    expect(jobs.find((j: any) => j.id === oneShot.id)).toMatchObject({ enabled: false, next_run: null, last_status: 'ok' })
    expect(jobs.find((j: any) => j.id === weekly.id)).toMatchObject({ schedule: '0 9 * * 1', timezone: 'Europe/Berlin', enabled: true, next_run: weekly.next_run })
    expect(await gateway.stop()).toBe(0)

    gateway = await startGateway({ home: dir })
    try {
      expect(await runsOf(gateway, oneShot.id)).toHaveLength(1)
    } finally {
      await gateway.stop()
    }
  }, 30_000)

  test('after an in-process restart a job fires once per tick, not twice', async () => {
    const dir = home()
    const port = await freePort()
    const proc = Bun.spawn([...fromSource, 'gateway', '--host', '127.0.0.1', '--port', String(port)], {
      env: childEnv(dir, { XOPCBOT_NO_RESPAWN: '1', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' }),
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const url = `http://127.0.0.1:${port}`
    const g = { url } as RunningGateway
    try {
      await waitFor(async () => (await fetch(`${url}/health`).catch(() => null))?.ok, { what: 'gateway' })
      const job = await create(g, { schedule: '* * * * * *', message: 'tock' })
      proc.kill('SIGUSR1')
      await waitFor(async () => (await runCli(['gateway', 'status', '--json'], { home: dir })).stdout.includes(`"pid":${proc.pid}`), { what: 'restart' })
      const start = (await runsOf(g, job.id)).length
      await waitFor(async () => (await runsOf(g, job.id)).length >= start + 4, { what: 'four more runs' })
      const seconds = (await runsOf(g, job.id)).map((r) => r.started_at.slice(0, 19))
      expect(new Set(seconds).size).toBe(seconds.length)
    } finally {
      proc.kill('SIGTERM')
      await proc.exited
    }
  }, 30_000)

  // A slow job that skips its ticks and a failing job: tests/cron-scheduler.test.ts ("overlap and failures"), on a fake clock.

  test('bad input → 400 naming the field', async () => {
    const gateway = await startGateway({ home: home() })
    try {
      const cases: [unknown, string][] = [
        [{ schedule: '61 * * * *', message: 'x' }, 'schedule: Invalid value for minute: 61'],
        [{ schedule: '* * * *', message: 'x' }, 'schedule: must be a cron expression with 5 or 6 fields'],
        [{ schedule: '0 0 0 * * * *', message: 'x' }, 'schedule: must be a cron expression with 5 or 6 fields'],
        [{ schedule: '2001-01-01T00:00:00Z', message: 'x' }, 'is in the past'],
        [{ schedule: '0 0 30 2 *', message: 'x' }, 'schedule: never fires (February has no day 30)'],
        [{ schedule: '0 0 31 4 *', message: 'x' }, 'schedule: never fires (April has no day 31)'],
        [{ schedule: '2026-02-30T10:00:00Z', message: 'x' }, 'schedule: is not a real date-time'],
        [{ schedule: '2099-13-01T10:00:00Z', message: 'x' }, 'schedule: is not a real date-time'],
        [{ schedule: '2099-01-01T25:00:00Z', message: 'x' }, 'schedule: is not a real date-time'],
        [{ schedule: '@daily', message: 'x', timezone: 'Mars/Olympus' }, 'timezone: unknown time zone'],
        [{ schedule: '@daily', message: 'x', mode: 'direct' }, 'channel and chat_id: are required for mode "direct"'],
        [{ schedule: '@daily', message: 'x', channel: 'nowhere', chat_id: '1' }, 'channel: no enabled channel "nowhere"'],
        [{ schedule: '@daily', message: 'x', mode: 'loud' }, 'mode: must be "agent" or "direct"'],
        [{ schedule: 5, message: 'x' }, 'schedule: must be a string'],
        [{ schedule: '@daily' }, 'message: is required'],
        [{ schedule: '@daily', message: 'x', enabled: 'yes' }, 'enabled: must be true or false'],
      ]
      for (const [body, message] of cases) {
        const response = await postJson(`${gateway.url}/api/cron/create`, body)
        expect({ status: response.status, message: (await json(response)).error?.message }).toMatchObject({ status: 400, message: expect.stringContaining(message) })
      }
      expect((await postJson(`${gateway.url}/api/cron/trigger`, {})).status).toBe(400)
      expect((await postJson(`${gateway.url}/api/cron/nope/toggle`, { enabled: 'no' })).status).toBe(400)
      expect((await json(await fetch(`${gateway.url}/api/cron`))).jobs).toEqual([])
    } finally {
      await gateway.stop()
    }
  })

  test('the cron tool, called by the model, creates a real job', async () => {
    const gateway = await startGateway({ home: home() })
    try {
      llm.queue.push({ toolCalls: [{ name: 'cron', input: { action: 'create', schedule: '0 9 * * 1', message: 'weekly planning', name: 'monday' } }] }, { text: 'I will remind you every Monday at 9.' })
      const reply = await json(await postJson(`${gateway.url}/api/agent`, { message: 'remind me every Monday at 9 to plan the week' }))
      expect(reply.reply).toBe('I will remind you every Monday at 9.')
      const jobs = (await json(await fetch(`${gateway.url}/api/cron`))).jobs
      expect(jobs).toHaveLength(1)
      expect(jobs[0]).toMatchObject({ name: 'monday', schedule: '0 9 * * 1', message: 'weekly planning', enabled: true })
    } finally {
      await gateway.stop()
    }
  })

  test('xopcbot cron list | add | toggle | run | rm, as tables and --json', async () => {
    const dir = home({ gateway: { auth: { token: 'cron-cli-token-123456' } } })
    const gateway = await startGateway({ home: dir })
    try {
      const added = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'daily digest', '--name', 'digest', '--json'], { home: dir })
      expect(added.code).toBe(0)
      const job = JSON.parse(added.stdout)
      expect(job).toMatchObject({ name: 'digest', schedule: '@daily', enabled: true })
      const table = await runCli(['cron', 'list'], { home: dir })
      expect(table.stdout).toMatch(/^ID\s+NAME\s+SCHEDULE\s+ENABLED\s+NEXT RUN\s+LAST$/m)
      expect(table.stdout).toContain(job.id)
      expect((await runCli(['cron', 'toggle', job.id, '--off'], { home: dir })).stdout).toContain('is now disabled')
      const ran = await runCli(['cron', 'run', job.id], { home: dir })
      expect(ran.code).toBe(0)
      expect(ran.stdout).toContain('echo: daily digest')
      expect((await runCli(['cron', 'rm', job.id], { home: dir })).code).toBe(0)
      const missing = await runCli(['cron', 'rm', job.id], { home: dir })
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain('JOB_NOT_FOUND')
      expect(JSON.parse((await runCli(['cron', 'list', '--json'], { home: dir })).stdout)).toEqual([])
      expect((await runCli(['cron', 'add', '--message', 'x'], { home: dir })).code).toBe(2)
      const never = await runCli(['cron', 'add', '--schedule', '0 0 31 4 *', '--message', 'x'], { home: dir })
      expect(never.code).toBe(1)
      expect(never.stderr).toContain('schedule: never fires (April has no day 31)')
      const unreal = await runCli(['cron', 'add', '--schedule', '2099-02-30T09:00:00Z', '--message', 'x'], { home: dir })
      expect(unreal.code).toBe(1)
      expect(unreal.stderr).toContain('schedule: is not a real date-time')
      expect(JSON.parse((await runCli(['cron', 'list', '--json'], { home: dir })).stdout)).toEqual([])
    } finally {
      await gateway.stop()
    }
    const down = await runCli(['cron', 'list'], { home: dir })
    expect(down.code).toBe(3)
    expect(down.stderr).toContain('not running')
  })
})
