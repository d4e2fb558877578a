import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHmac } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sign } from '../src/channels/webhook'
import { makeWorld, WEBHOOK_SECRET, type World } from './helpers/channels'
import { freePort, ROOT, writeConfig, type RunningGateway } from './helpers/gateway'
import { postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

// The README's JavaScript and Python examples (the original design's), run as written: only the port is
// changed to the test gateway's.
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const block = (language: string, heading = '### From JavaScript and Python') => {
  const section = readme.slice(readme.indexOf(heading))
  return new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(section)![1]!
}

let world: World
let gateway: RunningGateway
beforeAll(async () => {
  world = await makeWorld()
  gateway = await world.start()
})
afterAll(async () => {
  await gateway.stop()
  world.stop()
})

/** Runs a command without blocking this process: the fakes it talks to live here. */
async function run(command: string[]) {
  const proc = Bun.spawn(command, { stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  await proc.exited
  return { stdout, stderr }
}

const withPort = (code: string) => code.replaceAll('http://localhost:18790', `http://localhost:${gateway.port}`)
const dir = mkdtempSync(join(tmpdir(), 'xopcbot-examples-'))

// The Python examples need python3 (the client example also its requests package): without them they skip, and say so.
const python = Bun.which('python3')
const hasRequests = python !== null && Bun.spawnSync([python, '-c', 'import requests']).exitCode === 0
if (!python) console.log('skipped: the Python examples (python3 is not installed here)')
else if (!hasRequests) console.log('skipped: the Python client example (the requests package is not installed here)')

describe('README examples', () => {
  test('JavaScript (Node.js): sendMessage and chatWithAgent', async () => {
    const file = join(dir, 'example.mjs')
    writeFileSync(file, `${withPort(block('javascript'))}\nconsole.log(JSON.stringify([await sendMessage('Hello from JS', '2024'), await chatWithAgent('What is 2+2?')]))\n`)
    const result = await run([Bun.which('node') ?? process.execPath, file])
    expect(result.stderr).toBe('')
    const [sent, chat] = JSON.parse(result.stdout)
    expect(sent).toEqual({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    expect(chat).toEqual({ status: 'ok', reply: 'echo: What is 2+2?', session: 'default', model: 'fake/echo' })
    await waitFor(() => world.telegram.sent.find((m) => m.chat_id === '2024' && m.text === 'echo: Hello from JS'), { what: 'the delivery' })
  })

  test.skipIf(!hasRequests)('Python (requests): send_message and chat', async () => {
    const file = join(dir, 'example.py')
    writeFileSync(file, `${withPort(block('python'))}\nimport json\nprint(json.dumps([send_message('Hello from Python', '2025'), chat('hi from python')]))\n`)
    const result = await run([python!, file])
    expect(result.stderr).toBe('')
    const [sent, chat] = JSON.parse(result.stdout)
    expect(sent).toEqual({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    expect(chat).toEqual({ status: 'ok', reply: 'echo: hi from python', session: 'default', model: 'fake/echo' })
  })

  test('curl: health, agent and message, as in the README', async () => {
    const curl = async (args: string[]) => JSON.parse((await run(['curl', '-s', ...args.map(withPort)])).stdout)
    expect((await curl(['http://localhost:18790/health'])).status).toBe('healthy')
    expect(await curl(['-X', 'POST', 'http://localhost:18790/api/agent', '-H', 'Content-Type: application/json', '-d', '{"message": "What is 2+2?"}'])).toMatchObject({ status: 'ok', reply: 'echo: What is 2+2?' })
    expect(await curl(['-X', 'POST', 'http://localhost:18790/api/message', '-H', 'Content-Type: application/json', '-d', '{"channel": "telegram", "chat_id": "123", "content": "Hello!"}'])).toMatchObject({ status: 'ok' })
  })
})

describe('README webhook examples', () => {
  // A gateway whose webhook channel delivers to a receiver from the README, run as written: only its port and
  // secret are changed.
  let receiverWorld: World
  let receiverGateway: RunningGateway
  let receiverPort: number
  beforeAll(async () => {
    receiverWorld = await makeWorld()
    receiverPort = await freePort()
    receiverWorld.config.channels.myapp.url = `http://127.0.0.1:${receiverPort}/hook`
    writeConfig(receiverWorld.home, receiverWorld.config)
    receiverGateway = await receiverWorld.start()
  })
  afterAll(async () => {
    await receiverGateway.stop()
    receiverWorld.stop()
  })

  test('curl: a signed event is taken once; the same request again is a duplicate', async () => {
    const script = block('sh', '### `POST /api/webhook/:channel`')
    const send = async () => {
      const proc = Bun.spawn(['bash', '-c', withPort(script)], { env: { ...process.env, SECRET: WEBHOOK_SECRET }, stdout: 'pipe', stderr: 'pipe' })
      const out = await new Response(proc.stdout).text()
      await proc.exited
      return JSON.parse(out)
    }
    expect(await send()).toEqual({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    // Sent again, under the same event id: taken once.
    expect(await send()).toEqual({ status: 'ok', duplicate: true })
    await waitFor(() => world.receiver.received.some((d) => d.body.data.content === 'echo: ping'), { what: 'the reply to the event' })
    expect(world.llm.calls.filter((c) => c.lastUser === 'ping')).toHaveLength(1)
  })

  const receivers = [
    { name: 'Python (standard library)', language: 'python', file: 'receiver.py', command: () => (python ? [python, '-u'] : null) },
    { name: 'JavaScript (node:http, node:crypto)', language: 'javascript', file: 'receiver.mjs', command: () => [Bun.which('node') ?? process.execPath] },
  ]
  for (const receiver of receivers) {
    test.skipIf(!receiver.command())(`${receiver.name} receiver: verifies a real delivery, takes a retry once, refuses forgeries`, async () => {
      const code = block(receiver.language, '### Receiving webhook deliveries').replaceAll('your-channel-secret', WEBHOOK_SECRET).replaceAll('8080', String(receiverPort))
      const file = join(dir, receiver.file)
      writeFileSync(file, code)
      const proc = Bun.spawn([...receiver.command()!, file], { stdout: 'pipe', stderr: 'pipe' })
      const hook = `http://127.0.0.1:${receiverPort}/hook`
      try {
        await waitFor(() => fetch(hook).then(() => true, () => false), { what: 'the receiver to listen' })
        // A real delivery from the gateway: /api/send answers 200 only when the receiver accepted it.
        const sent = await postJson(`${receiverGateway.url}/api/send`, { channel: 'myapp', chat_id: 'r', content: `hello ${receiver.language}` })
        expect(sent.status).toBe(200)
        const { message_id } = (await sent.json()) as { message_id: string }
        // The gateway's retry of that event (same event id, signed again): acknowledged, not handled again.
        const retry = JSON.stringify({ event: 'message', data: { chat_id: 'r', content: 'a retry', message_id } })
        const now = Math.floor(Date.now() / 1000)
        const headers = (ts: number, body: string, secret = WEBHOOK_SECRET) => ({ 'x-xopcbot-timestamp': String(ts), 'x-xopcbot-signature': sign(secret, ts, body), 'x-xopcbot-event-id': message_id })
        expect((await postJson(hook, retry, headers(now, retry))).status).toBe(200)
        // Forgeries: another secret, a stale timestamp, a tampered body, the old signature without a timestamp.
        const forged = JSON.stringify({ event: 'message', data: { chat_id: 'r', content: 'forged', message_id: 'wh_other' } })
        const other = { 'x-xopcbot-event-id': 'wh_other' }
        expect((await postJson(hook, forged, { ...headers(now, forged, 'not-the-channel-secret'), ...other })).status).toBe(401)
        expect((await postJson(hook, forged, { ...headers(now - 301, forged), ...other })).status).toBe(401)
        expect((await postJson(hook, forged.replace('forged', 'FORGED'), { ...headers(now, forged), ...other })).status).toBe(401)
        const oldScheme = `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(forged).digest('hex')}`
        expect((await postJson(hook, forged, { 'x-xopcbot-timestamp': String(now), 'x-xopcbot-signature': oldScheme, ...other })).status).toBe(401)
      } finally {
        proc.kill()
      }
      await proc.exited
      // It handled exactly the one genuine event.
      expect((await new Response(proc.stdout).text()).trim().split('\n')).toEqual([`hello ${receiver.language}`])
    })
  }
})
