import { afterEach, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { World } from './helpers/channels'
import { worldTracker } from './helpers/channels'
import { postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

// What a Telegram user sees of a reply: the model's Markdown as Telegram formatting, plain text when Telegram
// cannot parse it, and "typing…" while the turn runs. A real gateway, the fake Bot API (which parses HTML as
// Telegram does) and the fake model.

const worlds = worldTracker()
afterEach(worlds.cleanUp)

const sentTo = (w: World, chat: number) => w.telegram.sent.filter((m) => m.chat_id === String(chat))
const typingIn = (w: World, chat: number) => w.telegram.chatActions.filter((a) => a.chat_id === String(chat))
const logLines = (w: World) =>
  readFileSync(join(w.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))

describe('formatting', () => {
  test('a Markdown reply arrives as Telegram HTML', async () => {
    const { w } = await worlds.start()
    w.llm.queue.push({ text: '**Done.** See the [docs](https://example.com/a?b=1&c=2) or run `ls <dir>`:\n```sh\nls -l\n```' })
    w.telegram.pushMessage(4242, 'how?')
    const reply = await waitFor(() => sentTo(w, 4242)[0], { what: 'the reply' })
    expect(reply.parse_mode).toBe('HTML')
    expect(reply.text).toBe(
      '<b>Done.</b> See the <a href="https://example.com/a?b=1&amp;c=2">docs</a> or run <code>ls &lt;dir&gt;</code>:\n<pre><code class="language-sh">ls -l</code></pre>',
    )
    expect(reply.visible).toBe('Done. See the docs or run ls <dir>:\nls -l')
    expect(reply.entities.map((e) => e.type)).toEqual(['bold', 'text_link', 'code', 'pre'])
    expect(sentTo(w, 4242)).toHaveLength(1)
  })

  test('a message Telegram cannot parse is sent again as plain text, and logged at warn', async () => {
    const { w, url } = await worlds.start()
    // A Bot API server that does not know <blockquote> refuses the HTML: the chat still gets the reply.
    w.telegram.unsupportedTags.add('blockquote')
    w.llm.queue.push({ text: '> quoted **wisdom**\n\nSee [the docs](https://example.com/x).' })
    await postJson(`${url}/api/message`, { channel: 'telegram', chat_id: '31337', content: 'quote me' })
    const reply = await waitFor(() => sentTo(w, 31337)[0], { what: 'the plain reply' })
    const refused = w.telegram.calls.filter((c) => c.method === 'sendMessage' && String(c.body.chat_id) === '31337' && c.body.parse_mode === 'HTML')
    expect(refused).toHaveLength(1)
    expect(reply.parse_mode).toBeUndefined()
    expect(reply.text).toBe('quoted wisdom\n\nSee the docs (https://example.com/x).')
    const warning = await waitFor(() => logLines(w).find((line) => line.msg.startsWith('Telegram could not parse')), { what: 'the warning' })
    expect(warning).toMatchObject({ level: 'warn', channel: 'telegram', chatId: '31337' })
    expect(warning.reason).toContain('Unsupported start tag "blockquote"')
    expect(JSON.stringify(warning)).not.toContain('wisdom')
  })

  test('a long formatted reply is split into balanced messages at paragraphs', async () => {
    const { w, url } = await worlds.start()
    const paragraphs = Array.from({ length: 12 }, (_, i) => `**Part ${i}**: ${'some words and more words '.repeat(30).trim()}`)
    w.llm.queue.push({ text: paragraphs.join('\n\n') })
    // The sync call answers once the reply was delivered: every part has been sent by then.
    expect((await postJson(`${url}/api/message/sync`, { channel: 'telegram', chat_id: '808', content: 'tell me a lot' })).status).toBe(200)
    const parts = sentTo(w, 808)
    expect(parts.length).toBe(3)
    for (const part of parts) {
      expect(part.parse_mode).toBe('HTML')
      expect(part.visible.length).toBeLessThanOrEqual(4096)
      expect(part.text).toStartWith('<b>Part ')
    }
    expect(parts.map((p) => p.visible.trimEnd()).join('\n\n')).toBe(paragraphs.join('\n\n').replaceAll('**', ''))
  })
})

describe('typing…', () => {
  test('shown while a slow turn runs, renewed every 4 s, and not after the reply', async () => {
    const { w } = await worlds.start()
    w.llm.queue.push({ text: 'that took a while', delayMs: 9_000 })
    w.telegram.pushMessage(5150, 'think hard')
    const first = await waitFor(() => typingIn(w, 5150)[0], { what: 'the first chat action' })
    expect(first.action).toBe('typing')
    const reply = await waitFor(() => sentTo(w, 5150)[0], { what: 'the reply', timeoutMs: 20_000 })
    const during = typingIn(w, 5150)
    // 0 s, 4 s, 8 s: Telegram shows each for about 5 s.
    expect(during.length).toBeGreaterThanOrEqual(3)
    expect(during.every((a) => a.action === 'typing' && a.at < reply.at)).toBe(true)
    for (let i = 1; i < during.length; i++) expect(during[i]!.at - during[i - 1]!.at).toBeGreaterThan(3_500)

    // Another chat's 5-s turn spans more than one renewal period of the first: the first chat sees no more typing.
    w.llm.queue.push({ text: 'second', delayMs: 5_000 })
    w.telegram.pushMessage(6160, 'and you?')
    await waitFor(() => sentTo(w, 6160).length, { what: 'the second reply', timeoutMs: 20_000 })
    expect(typingIn(w, 6160).length).toBeGreaterThanOrEqual(2)
    expect(typingIn(w, 5150)).toHaveLength(during.length)
  }, 60_000)

  test('a failing sendChatAction changes nothing for the turn', async () => {
    const { w } = await worlds.start()
    w.telegram.failures.set('sendChatAction', [{ error_code: 400, description: 'Bad Request: chat not found' }, 'drop', { error_code: 429, description: 'Too Many Requests', retry_after: 30 }])
    w.llm.queue.push({ text: 'still **here**', delayMs: 8_500 })
    w.telegram.pushMessage(7170, 'hello')
    const reply = await waitFor(() => sentTo(w, 7170)[0], { what: 'the reply', timeoutMs: 20_000 })
    expect(reply.text).toBe('still <b>here</b>')
    // All three were tried (and failed), none retried in between, and the reply went out once.
    expect(w.telegram.calls.filter((c) => c.method === 'sendChatAction').length).toBeGreaterThanOrEqual(3)
    expect(w.telegram.failures.get('sendChatAction')).toEqual([])
    expect(sentTo(w, 7170)).toHaveLength(1)
  }, 60_000)

  test('a failed turn stops it', async () => {
    const { w, url } = await worlds.start()
    w.llm.queue.push({ status: 500, delayMs: 4_500 })
    w.telegram.pushMessage(9190, 'break')
    await waitFor(async () => ((await (await fetch(`${url}/api/status`)).json()) as any).queue.failed === 1, { what: 'the failed message', timeoutMs: 20_000 })
    const during = typingIn(w, 9190).length
    expect(during).toBeGreaterThanOrEqual(2)
    // A later turn in another chat takes longer than one renewal period: nothing more in the failed one.
    w.llm.queue.push({ text: 'ok', delayMs: 4_500 })
    w.telegram.pushMessage(9191, 'next')
    await waitFor(() => sentTo(w, 9191).length, { what: 'the other reply', timeoutMs: 20_000 })
    expect(typingIn(w, 9190)).toHaveLength(during)
    expect(sentTo(w, 9190)).toHaveLength(0)
  }, 60_000)
})
