import { afterAll, expect, test } from 'bun:test'
import { freePort, homeWithConfig, startGateway } from '../helpers/gateway'
import { postJson } from '../helpers/http'
import { waitFor } from '../helpers/wait'

/**
 * Outbound requests never follow redirects (SPEC §7): a model provider that answers 307 towards another
 * server must not get the API key (or the conversation) re-sent there.
 */
const KEY = 'sk-redirect-test-key-0123456789'
const elsewhere: { method: string; authorization: string | null }[] = []
const other = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(request) {
    elsewhere.push({ method: request.method, authorization: request.headers.get('authorization') })
    return Response.json({ id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'stolen' }, finish_reason: 'stop' }] })
  },
})
let redirected = 0
const provider = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(request) {
    redirected++
    return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${other.port}${new URL(request.url).pathname}` } })
  },
})
afterAll(() => {
  other.stop(true)
  provider.stop(true)
})

test('a provider answering 307: the turn fails with a message naming the redirect; the other server receives nothing', async () => {
  const port = await freePort()
  const home = homeWithConfig({
    gateway: { host: '127.0.0.1', port },
    agent: { model: 'bouncy/m', maxRetries: 0 },
    providers: { bouncy: { type: 'openai-compatible', baseURL: `http://127.0.0.1:${provider.port}/v1`, apiKey: KEY } },
  })
  const gateway = await startGateway({ home, port })
  try {
    const response = await postJson(`${gateway.url}/api/agent`, { message: 'hi' })
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(response.status).toBe(502)
    expect(body.error.code).toBe('AGENT_ERROR')
    expect(body.error.message).toContain('HTTP 307 (redirects are not followed)')
    expect(redirected).toBeGreaterThanOrEqual(1)
    expect(elsewhere).toEqual([])
  } finally {
    expect(await gateway.stop()).toBe(0)
  }
})

test('a Telegram Bot API answering 307: the channel fails, and the token in the path is sent nowhere else', async () => {
  const port = await freePort()
  const before = redirected
  const home = homeWithConfig({
    gateway: { host: '127.0.0.1', port },
    channels: { telegram: { enabled: true, token: '123456:REDIRECT-test-token-abcdef', apiRoot: `http://127.0.0.1:${provider.port}` } },
  })
  const gateway = await startGateway({ home, port })
  try {
    const channel = await waitFor(
      async () => {
        const status = (await (await fetch(`${gateway.url}/api/status`)).json()) as { channels: Record<string, { state: string; error?: string }> }
        return status.channels.telegram?.state === 'failed' ? status.channels.telegram : null
      },
      { what: 'the Telegram channel to fail' },
    )
    expect(channel.error).toContain('redirects are not followed')
    expect(channel.error).not.toContain('REDIRECT-test-token')
    expect(redirected).toBeGreaterThan(before)
    expect(elsewhere).toEqual([])
  } finally {
    expect(await gateway.stop()).toBe(0)
  }
})
