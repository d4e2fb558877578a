import { afterAll, expect, test } from 'bun:test'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { startFakeLlm } from '../fakes/llm'
import { freePort, homeWithConfig, runCli, startGateway } from '../helpers/gateway'
import { KeepAliveClient } from '../helpers/raw-http'
import { waitFor } from '../helpers/wait'

/**
 * The log directory disappears under load. The log writer must not touch any descriptor but its own: every
 * keep-alive client reads exactly its own responses, the file comes back by itself, and stop is clean.
 */
const llm = startFakeLlm()
afterAll(() => llm.stop())

function agentRequest(port: number, session: string, message: string): string {
  const body = JSON.stringify({ message, session })
  return `POST /api/agent HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

test('a removed log directory under load: each client reads only its own replies; the log comes back; stop exits 0', async () => {
  const port = await freePort()
  const home = homeWithConfig({
    gateway: { host: '127.0.0.1', port },
    agent: { model: 'fake/echo', maxRetries: 0 },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } },
    logging: { level: 'info', maxFileBytes: 65536, maxFiles: 2 },
  })
  const dir = join(home, '.xopcbot')
  const gateway = await startGateway({ home, port })
  const logDir = join(dir, 'logs')
  const clients: KeepAliveClient[] = []
  let exchanged = 0
  try {
    const exchange = async (client: KeepAliveClient, name: string, n: number) => {
      const message = `${name}-${n}`
      const response = await client.send(agentRequest(port, name, message))
      exchanged++
      expect(response.status).toBe(200)
      expect(JSON.parse(response.body).reply).toBe(`echo: ${message}`)
    }
    const a = await KeepAliveClient.open(port)
    const b = await KeepAliveClient.open(port)
    clients.push(a, b)
    // Enough request lines to fill the 64 KiB file, so rotation runs while the directory is gone.
    for (let n = 0; n < 50; n++) await Promise.all([exchange(a, 'a', n), exchange(b, 'b', n)])
    rmSync(logDir, { recursive: true, force: true })
    // Keep both clients busy for a few of the writer's 1 s retry rounds, and keep opening new connections
    // (they take the lowest free descriptor numbers, where a stale log descriptor would point).
    let n = 50
    const until = Date.now() + 3500
    while (Date.now() < until) {
      await Promise.all([exchange(a, 'a', n), exchange(b, 'b', n)])
      if (n % 20 === 0) {
        const c = await KeepAliveClient.open(port)
        clients.push(c)
        await exchange(c, `c${n}`, n)
      }
      n++
    }
    // Another round on every connection: none was closed or crossed by the log writer.
    for (const [index, client] of clients.entries()) await exchange(client, `final${index}`, n)
    expect(exchanged).toBeGreaterThan(150)
    // The writer came back by itself: the file exists again and holds request lines written after the removal.
    await waitFor(() => existsSync(join(logDir, 'gateway.log')) && readFileSync(join(logDir, 'gateway.log'), 'utf8').includes('"path":"/api/agent"'), {
      what: 'the log file to be written again',
    })
  } finally {
    for (const client of clients) client.close()
  }
  const stopped = await runCli(['gateway', 'stop'], { home })
  expect(stopped.stdout).toContain('Gateway stopped')
  expect(stopped.code).toBe(0)
  expect(await gateway.proc.exited).toBe(0)
  expect(gateway.output()).not.toContain('EBADF')
  const log = await waitFor(() => readFileSync(join(logDir, 'gateway.log'), 'utf8').includes('gateway stopped') && readFileSync(join(logDir, 'gateway.log'), 'utf8'), { what: 'the stop line in the recreated log' })
  expect(log).toContain('"msg":"gateway stopped"')
}, 90_000)
