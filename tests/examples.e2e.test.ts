import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeWorld, type World } from './helpers/channels'
import { ROOT, type RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

// The README's JavaScript and Python examples (the original design's), run as written: only the port is
// changed to the test gateway's.
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const block = (language: string) => {
  const section = readme.slice(readme.indexOf('### From JavaScript and Python'))
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

describe('README examples', () => {
  test('JavaScript (Node.js): sendMessage and chatWithAgent', async () => {
    const file = join(dir, 'example.mjs')
    writeFileSync(file, `${withPort(block('javascript'))}\nconsole.log(JSON.stringify([await sendMessage('Hello from JS', '2024'), await chatWithAgent('What is 2+2?')]))\n`)
    const result = await run([Bun.which('node') ?? process.execPath, file])
    expect(result.stderr).toBe('')
    const [sent, chat] = JSON.parse(result.stdout)
    expect(sent).toEqual({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    expect(chat).toEqual({ status: 'ok', reply: 'echo: What is 2+2?', session: 'default' })
    await waitFor(() => world.telegram.sent.find((m) => m.chat_id === '2024' && m.text === 'echo: Hello from JS'), { what: 'the delivery' })
  })

  test('Python (requests): send_message and chat', async () => {
    const python = Bun.which('python3')
    const hasRequests = python && Bun.spawnSync([python, '-c', 'import requests']).exitCode === 0
    if (!hasRequests) {
      console.log('skipped: python3 with the requests package is not installed here')
      return
    }
    const file = join(dir, 'example.py')
    writeFileSync(file, `${withPort(block('python'))}\nimport json\nprint(json.dumps([send_message('Hello from Python', '2025'), chat('hi from python')]))\n`)
    const result = await run([python!, file])
    expect(result.stderr).toBe('')
    const [sent, chat] = JSON.parse(result.stdout)
    expect(sent).toEqual({ status: 'ok', message_id: expect.stringMatching(/^msg_/) })
    expect(chat).toEqual({ status: 'ok', reply: 'echo: hi from python', session: 'default' })
  })

  test('curl: health, agent and message, as in the README', async () => {
    const curl = async (args: string[]) => JSON.parse((await run(['curl', '-s', ...args.map(withPort)])).stdout)
    expect((await curl(['http://localhost:18790/health'])).status).toBe('healthy')
    expect(await curl(['-X', 'POST', 'http://localhost:18790/api/agent', '-H', 'Content-Type: application/json', '-d', '{"message": "What is 2+2?"}'])).toMatchObject({ status: 'ok', reply: 'echo: What is 2+2?' })
    expect(await curl(['-X', 'POST', 'http://localhost:18790/api/message', '-H', 'Content-Type: application/json', '-d', '{"channel": "telegram", "chat_id": "123", "content": "Hello!"}'])).toMatchObject({ status: 'ok' })
  })
})
