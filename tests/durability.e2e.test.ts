import { afterEach, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { join } from 'node:path'
import { makeWorld, type World } from './helpers/channels'
import type { RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const worlds: World[] = []
afterEach(() => {
  for (const w of worlds.splice(0)) w.stop()
})

async function killHard(gateway: RunningGateway) {
  gateway.proc.kill('SIGKILL')
  await gateway.proc.exited
}

function integrityOf(home: string): string {
  const db = new Database(join(home, '.xopcbot', 'xopcbot.db'))
  try {
    return (db.query('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check
  } finally {
    db.close()
  }
}

describe('nothing accepted is lost', () => {
  test('500 /api/message under three kill -9 at random points: every accepted message ends delivered or failed with a reason; none delivered twice', async () => {
    const w = await makeWorld()
    worlds.push(w)
    w.llm.fallback = (call) => ({ text: `echo: ${call.lastUser}`, delayMs: 3 })
    let gateway = await w.start()
    const accepted = new Map<string, string>() // message_id → content
    let next = 0
    // Until `stop()` (the kill rounds: until the gateway is gone, whatever the count) or until 500 are accepted.
    const sendSome = async (stop: () => boolean, upTo = Infinity) => {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (accepted.size < upTo && !stop()) {
            const content = `m-${next++}`
            const response = await postJson(`${gateway.url}/api/message`, { channel: 'telegram', chat_id: String(next % 7), content }).catch(() => null)
            if (response?.status === 202) accepted.set((await json(response)).message_id, content)
            else if (!response) return
          }
        }),
      )
    }
    // Three times: kill the gateway at a random point while requests are still arriving, then start it again.
    for (let kill = 0; kill < 3; kill++) {
      const at = accepted.size + 60 + Math.floor(Math.random() * 60)
      const killer = waitFor(() => accepted.size >= at, { what: `${at} accepted`, timeoutMs: 30_000 }).then(() => killHard(gateway))
      await sendSome(() => gateway.proc.exitCode !== null)
      await killer
      gateway = await w.start()
    }
    await sendSome(() => false, 500)
    expect(accepted.size).toBeGreaterThanOrEqual(500)

    const final = await waitFor(
      async () => {
        const states = await Promise.all([...accepted.keys()].map(async (id) => (await json(await fetch(`${gateway.url}/api/message/${id}`))).message))
        return states.every((m) => m && (m.state === 'delivered' || m.state === 'failed')) ? states : null
      },
      { what: 'every message to settle', timeoutMs: 60_000, intervalMs: 250 },
    )
    const sentTexts = w.telegram.sent.map((m) => m.text)
    expect(new Set(sentTexts).size).toBe(sentTexts.length)
    for (const message of final) {
      const content = accepted.get(message.id)!
      const copies = sentTexts.filter((t) => t === `echo: ${content}`).length
      if (message.state === 'delivered') expect(copies).toBe(1)
      else {
        expect(message.error.length).toBeGreaterThan(10)
        expect(copies).toBeLessThanOrEqual(1)
      }
    }
    expect(final.filter((m) => m.state === 'delivered').length).toBeGreaterThan(accepted.size - 20)
    expect(await gateway.stop()).toBe(0)
    expect(integrityOf(w.home)).toBe('ok')
  }, 120_000)

  test('Telegram updates across a kill -9 are neither dropped nor repeated', async () => {
    const w = await makeWorld()
    worlds.push(w)
    w.llm.fallback = (call) => ({ text: `echo: ${call.lastUser}`, delayMs: 30 })
    let gateway = await w.start()
    const texts = Array.from({ length: 30 }, (_, i) => `update-${i}`)
    for (const [i, text] of texts.entries()) w.telegram.pushMessage(100 + (i % 3), text)
    await waitFor(() => w.telegram.sent.length >= 8, { what: 'some replies' })
    await killHard(gateway)
    const offsetsBefore = w.telegram.offsets.length
    gateway = await w.start()
    const histories = await waitFor(
      async () => {
        const sessions = await Promise.all([100, 101, 102].map(async (chat) => (await json(await fetch(`${gateway.url}/api/sessions/telegram%3A${chat}`))).session))
        const users = sessions.flatMap((s) => (s?.messages ?? []).filter((m: any) => m.role === 'user').map((m: any) => m.content))
        return users.length >= 30 && w.telegram.sent.length + 0 >= 28 ? users : null
      },
      { what: 'all updates answered', timeoutMs: 30_000, intervalMs: 100 },
    )
    expect([...histories].sort()).toEqual([...texts].sort())
    const sentTexts = w.telegram.sent.map((m) => m.text)
    expect(new Set(sentTexts).size).toBe(sentTexts.length)
    // The first poll after the restart continued from the stored offset.
    expect(w.telegram.offsets[offsetsBefore]).toBeGreaterThan(1000)
    expect(await gateway.stop()).toBe(0)
  }, 60_000)
})
