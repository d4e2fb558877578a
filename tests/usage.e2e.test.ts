import { afterAll, expect, test } from 'bun:test'
import { startFakeLlm } from './fakes/llm'
import { homeWithConfig, runCli, startGateway } from './helpers/gateway'
import { postJson } from './helpers/http'

const llm = startFakeLlm()
afterAll(() => llm.stop())

const config = {
  agent: { model: 'fake/echo', maxRetries: 0 },
  providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } },
  pricing: { 'fake/echo': { input: 3, output: 15 } },
}

test('xopcbot usage prints the running gateway\'s usage as a table and as JSON; bad flags and no gateway are clear errors', async () => {
  const home = homeWithConfig(config)
  const notRunning = await runCli(['usage'], { home })
  expect(notRunning.code).toBe(3)
  expect(notRunning.stderr).toContain('Gateway is not running')

  const gateway = await startGateway({ home })
  try {
    for (const session of ['alpha', 'alpha', 'beta']) expect((await postJson(`${gateway.url}/api/agent`, { message: 'hi', session })).status).toBe(200)

    const asJson = await runCli(['usage', '--since', '7d', '--by', 'session', '--json'], { home })
    expect(asJson.code).toBe(0)
    const report = JSON.parse(asJson.stdout)
    expect(report.group_by).toBe('session')
    expect(report.rows).toEqual([
      { key: 'alpha', input_tokens: 22, output_tokens: 14, turns: 2, cost: 0.000276 },
      { key: 'beta', input_tokens: 11, output_tokens: 7, turns: 1, cost: 0.000138 },
    ])
    expect(report.total).toEqual({ input_tokens: 33, output_tokens: 21, turns: 3, cost: 0.000414 })

    const asTable = await runCli(['usage', '--by', 'model'], { home })
    expect(asTable.code).toBe(0)
    const lines = asTable.stdout.trim().split('\n')
    expect(lines[1]!.split(/\s+/)).toEqual(['MODEL', 'TURNS', 'INPUT', 'OUTPUT', 'TOTAL', 'COST'])
    expect(lines[2]!.split(/\s+/)).toEqual(['fake/echo', '3', '33', '21', '54', '$0.0004'])
    expect(lines[3]!.split(/\s+/)).toEqual(['total', '3', '33', '21', '54', '$0.0004'])

    const badBy = await runCli(['usage', '--by', 'week'], { home })
    expect(badBy.code).toBe(2)
    expect(badBy.stderr).toContain('--by: must be day, session, model or channel')
    const badSince = await runCli(['usage', '--since', 'last tuesday'], { home })
    expect(badSince.code).toBe(1)
    expect(badSince.stderr).toContain('query.since: must be an ISO date')

    const status = (await (await fetch(`${gateway.url}/api/status`)).json()) as any
    expect(status.usage_today).toMatchObject({ input_tokens: 33, output_tokens: 21, turns: 3, budget: null })
    expect(status.models).toEqual([{ name: 'fake/echo', role: 'primary', configured: true, recent_failures: [], last_success_at: expect.any(String) }])
  } finally {
    expect(await gateway.stop()).toBe(0)
  }
})
