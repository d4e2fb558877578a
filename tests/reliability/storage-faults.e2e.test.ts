import { describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readEvents } from '../helpers/agent'
import { makeWorld, type World } from '../helpers/channels'
import { tempHome, writeConfig, type RunningGateway } from '../helpers/gateway'
import { json, postJson } from '../helpers/http'
import { waitFor } from '../helpers/wait'

/**
 * A real full disk under the data directory: a small tmpfs, filled by a file. (As root a read-only permission
 * is not enforced, and a file system with files open for writing cannot be remounted read-only, so a full disk
 * is the storage fault that can be made real here.) Where no tmpfs can be mounted, the tests say so and skip.
 */
const tmpfs = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'xopcbot-tmpfs-probe-'))
  const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe])
  if (mounted.exitCode === 0) Bun.spawnSync(['umount', probe])
  rmSync(probe, { recursive: true, force: true })
  return mounted.exitCode === 0 ? { ok: true, why: '' } : { ok: false, why: ` [skipped: cannot mount a tmpfs here: ${mounted.stderr.toString().trim() || `exit ${mounted.exitCode}`}]` }
})()
if (!tmpfs.ok) console.log(`storage-faults.e2e: full-disk tests skipped${tmpfs.why}`)

/** The fake model's reply to "big:…" is big enough that storing the turn needs disk space a full disk does not have. */
const PADDING = ` ${'x'.repeat(200_000)}`

interface FullDiskWorld {
  w: World
  gateway: RunningGateway
  fill: () => void
  free: () => void
  done: () => Promise<void>
}

async function fullDiskWorld(): Promise<FullDiskWorld> {
  const w = await makeWorld()
  w.llm.fallback = (call) => ({ text: `echo: ${call.lastUser}${call.lastUser.startsWith('big:') ? PADDING : ''}` })
  const mount = join(tempHome(), 'data')
  mkdirSync(mount, { recursive: true })
  const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount])
  if (mounted.exitCode !== 0) throw new Error(`mount: ${mounted.stderr.toString()}`)
  writeConfig(w.home, { ...w.config, dataDir: mount })
  const gateway = await w.start()
  const filler = join(mount, 'filler')
  return {
    w,
    gateway,
    fill: () => void Bun.spawnSync(['dd', 'if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=64']),
    free: () => rmSync(filler, { force: true }),
    done: async () => {
      await gateway.stop()
      Bun.spawnSync(['umount', '-l', mount])
      w.stop()
    },
  }
}

const messageOf = async (gateway: RunningGateway, id: string) => (await json(await fetch(`${gateway.url}/api/message/${id}`))).message
const deliveriesOf = (w: World, content: string) => w.receiver.received.filter((d) => d.body.data.content.startsWith(`echo: ${content}`))

describe('no work is stuck after a storage fault', () => {
  test.skipIf(!tmpfs.ok)(`a message accepted just before the disk filled up is delivered, once, after space is freed — without a restart${tmpfs.why}`, async () => {
    const f = await fullDiskWorld()
    try {
      // The first answer takes a moment: the disk fills up while the model thinks.
      f.w.llm.queue.push({ text: `echo: big:before${PADDING}`, delayMs: 800 })
      const accepted = await postJson(`${f.gateway.url}/api/message`, { channel: 'myapp', chat_id: 'disk', content: 'big:before' })
      expect(accepted.status).toBe(202)
      const { message_id } = await json(accepted)
      await waitFor(() => f.w.llm.calls.some((c) => c.lastUser === 'big:before'), { what: 'the model call' })
      f.fill()
      await waitFor(() => /SQLITE_FULL|database or disk is full/.test(f.gateway.output()), { what: 'the turn to fail to be stored' })
      expect((await messageOf(f.gateway, message_id)).state).toBe('processing')
      f.free()
      const delivered = await waitFor(async () => {
        const message = await messageOf(f.gateway, message_id)
        return message.state === 'delivered' ? message : null
      }, { what: 'delivery after the disk was freed', timeoutMs: 20_000 })
      expect(delivered.reply).toBe(`echo: big:before${PADDING}`)
      expect(deliveriesOf(f.w, 'big:before')).toHaveLength(1)
      expect(f.gateway.proc.exitCode).toBeNull()
      const session = (await json(await fetch(`${f.gateway.url}/api/sessions/${encodeURIComponent('myapp:disk')}`))).session
      expect(session.messages.map((m: any) => m.content.slice(0, 16))).toEqual(['big:before', 'echo: big:before'])
    } finally {
      await f.done()
    }
  }, 60_000)

  test.skipIf(!tmpfs.ok)(`a turn whose tools already acted is not run again when its history cannot be stored${tmpfs.why}`, async () => {
    const f = await fullDiskWorld()
    try {
      // Every attempt of the turn would call send_message first, then answer (slowly, with a reply too big for a full disk).
      f.w.llm.fallback = (call) => {
        const last = call.body.messages?.at(-1)
        if (call.lastUser !== 'act') return { text: `echo: ${call.lastUser}` }
        if (last?.role !== 'tool') return { toolCalls: [{ name: 'send_message', input: { channel: 'telegram', chat_id: 'side', content: 'side effect' } }] }
        return { text: `done${PADDING}`, delayMs: 800 }
      }
      const { message_id } = await json(await postJson(`${f.gateway.url}/api/message`, { channel: 'myapp', chat_id: 'disk', content: 'act' }))
      await waitFor(() => f.w.telegram.sent.some((m) => m.text === 'side effect'), { what: 'the tool to act' })
      f.fill()
      await waitFor(() => f.gateway.output().includes('turn not stored after its tools ran'), { what: 'the turn to fail to be stored' })
      // Recording "failed" needs a little space too: it is written as soon as there is some.
      f.free()
      const failed = await waitFor(async () => {
        const message = await messageOf(f.gateway, message_id)
        return message.state === 'failed' ? message : null
      }, { what: 'the message to be marked failed', timeoutMs: 20_000 })
      expect(failed.error).toContain('after its tools had run')
      // Well past the retry schedule's first attempts (1 s, 2 s): the side effect happened once, the model was asked once.
      const after = await postJson(`${f.gateway.url}/api/message`, { channel: 'myapp', chat_id: 'disk', content: 'next' })
      expect(after.status).toBe(202)
      await waitFor(() => deliveriesOf(f.w, 'next').length === 1, { what: 'the next message (same chat, after the failed one)' })
      expect(f.w.telegram.sent.filter((m) => m.text === 'side effect')).toHaveLength(1)
      expect(f.w.llm.calls.filter((c) => c.lastUser === 'act' && c.body.messages?.at(-1)?.role !== 'tool')).toHaveLength(1)
    } finally {
      await f.done()
    }
  }, 60_000)

  test.skipIf(!tmpfs.ok)(`a fault that persists: the message ends failed with the reason after 5 attempts, nothing is sent${tmpfs.why}`, async () => {
    const f = await fullDiskWorld()
    try {
      f.w.llm.queue.push({ text: `echo: big:doomed${PADDING}`, delayMs: 800 })
      const { message_id } = await json(await postJson(`${f.gateway.url}/api/message`, { channel: 'myapp', chat_id: 'disk', content: 'big:doomed' }))
      await waitFor(() => f.w.llm.calls.some((c) => c.lastUser === 'big:doomed'), { what: 'the model call' })
      f.fill()
      // Attempts after 1, 2, 4 and 8 s; the disk stays full through all of them.
      await waitFor(() => f.gateway.output().includes('giving up on a message'), { what: 'the fifth attempt to fail', timeoutMs: 40_000 })
      // Recording "failed" needs a little space too: it is written as soon as there is some.
      f.free()
      const failed = await waitFor(async () => {
        const message = await messageOf(f.gateway, message_id)
        return message.state === 'failed' ? message : null
      }, { what: 'the message to be marked failed', timeoutMs: 20_000 })
      expect(failed.error).toMatch(/the database could not be written in 5 attempts \(SQLITE_(FULL|IOERR)/)
      expect(failed.error).toContain('nothing was sent to the chat')
      const attempts = f.w.llm.calls.filter((c) => c.lastUser === 'big:doomed').length
      expect(attempts).toBeGreaterThanOrEqual(1)
      expect(attempts).toBeLessThanOrEqual(5)
      expect(deliveriesOf(f.w, 'big:doomed')).toHaveLength(0)
      // The gateway is fine afterwards.
      const after = await postJson(`${f.gateway.url}/api/message`, { channel: 'myapp', chat_id: 'disk', content: 'after' })
      await waitFor(() => deliveriesOf(f.w, 'after').length === 1, { what: 'the next message' })
      expect(after.status).toBe(202)
    } finally {
      await f.done()
    }
  }, 90_000)
})

describe('a full disk is 503 UNAVAILABLE, not a model failure', () => {
  test.skipIf(!tmpfs.ok)(`/api/agent (JSON and SSE) and /v1/chat/completions (JSON and SSE) on a full disk; the gateway recovers once space is freed${tmpfs.why}`, async () => {
    const f = await fullDiskWorld()
    const url = f.gateway.url
    try {
      f.fill()
      const agent = await postJson(`${url}/api/agent`, { message: 'big:agent', session: 'disk' })
      const agentBody = await json(agent)
      expect({ status: agent.status, code: agentBody.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' })
      expect(agentBody.error.message).toContain('nothing was stored, retry later')

      const events = await readEvents(await postJson(`${url}/api/agent`, { message: 'big:agent-sse', session: 'disk', stream: true }))
      expect(events.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'UNAVAILABLE' } } })
      expect(events.at(-1)!.data.error.message).toContain('nothing was stored, retry later')

      const completion = await postJson(`${url}/v1/chat/completions`, { model: 'xopcbot', user: 'disk', messages: [{ role: 'user', content: 'big:openai' }] })
      const completionBody = await json(completion)
      expect({ status: completion.status, code: completionBody.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' })

      const streamed = await (await postJson(`${url}/v1/chat/completions`, { model: 'xopcbot', user: 'disk', stream: true, messages: [{ role: 'user', content: 'big:openai-sse' }] })).text()
      const chunks = streamed.split('\n\n').filter((block) => block.startsWith('data: {')).map((block) => JSON.parse(block.slice(6)))
      expect(chunks.at(-1)).toMatchObject({ error: { code: 'UNAVAILABLE' } })
      expect(streamed.trimEnd().endsWith('data: [DONE]')).toBe(true)
      expect((await fetch(`${url}/health`)).status).toBe(200)

      f.free()
      const recovered = await postJson(`${url}/api/agent`, { message: 'big:after', session: 'disk' })
      expect(recovered.status).toBe(200)
      expect((await json(recovered)).reply).toBe(`echo: big:after${PADDING}`)
      const openai = await json(await postJson(`${url}/v1/chat/completions`, { model: 'xopcbot', user: 'disk', messages: [{ role: 'user', content: 'small' }] }))
      expect(openai.choices[0].message.content).toBe('echo: small')
      // Nothing of the refused turns was stored.
      const session = (await json(await fetch(`${url}/api/sessions/disk`))).session
      expect(session.messages.map((m: any) => m.content.slice(0, 15))).toEqual(['big:after', 'echo: big:after'])
    } finally {
      await f.done()
    }
  }, 60_000)
})
