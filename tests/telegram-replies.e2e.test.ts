import { afterEach, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { World } from './helpers/channels'
import { makeWorld, worldTracker } from './helpers/channels'
import { postJson } from './helpers/http'
import { waitFor } from './helpers/wait'
import { writeConfig } from './helpers/gateway'
import { TYPING_RENEW_MS, typingRenewFromEnv } from '../src/channels/telegram/sender'

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

// Renewed every RENEW_MS here (XOPCBOT_TEST_TYPING_RENEW_MS) rather than every 4 s, so that many renewals,
// and their absence once a turn is over, take a second to see.
const RENEW_MS = 150
const typingWorld = (options: Parameters<typeof worlds.start>[0] = {}) => worlds.start({ ...options, env: { XOPCBOT_TEST_TYPING_RENEW_MS: String(RENEW_MS) } })

/**
 * Proof that `chat` sees no more "typing…": another chat's turn runs for `renewals` renewal periods (its own
 * chat actions are the clock), and the count in `chat` has not moved meanwhile.
 */
async function noMoreTyping(w: World, chat: number, clockChat: number, renewals = 5) {
  const before = typingIn(w, chat).length
  w.llm.queue.push({ text: 'the clock', delayMs: RENEW_MS * (renewals + 4) })
  w.telegram.pushMessage(clockChat, 'tick')
  await waitFor(() => typingIn(w, clockChat).length > renewals, { what: "the other chat's renewals" })
  expect(typingIn(w, chat)).toHaveLength(before)
  await waitFor(() => sentTo(w, clockChat).length, { what: "the other chat's reply" })
  expect(typingIn(w, chat)).toHaveLength(before)
}

describe('typing…', () => {
  test('Telegram shows it for about 5 s: it is renewed before that', () => {
    expect(TYPING_RENEW_MS).toBeLessThan(5000)
    expect(typingRenewFromEnv(undefined)).toBeNull()
    expect(typingRenewFromEnv('250')).toBe(250)
    for (const bad of ['0', '49', '-5', '1.5', 'fast', '9999999']) expect(typingRenewFromEnv(bad)).toContain('XOPCBOT_TEST_TYPING_RENEW_MS must be')
  })

  test('shown while a slow turn runs, renewed, and not after the reply', async () => {
    const { w } = await typingWorld()
    w.llm.queue.push({ text: 'that took a while', delayMs: RENEW_MS * 8 })
    w.telegram.pushMessage(5150, 'think hard')
    const first = await waitFor(() => typingIn(w, 5150)[0], { what: 'the first chat action' })
    expect(first.action).toBe('typing')
    const reply = await waitFor(() => sentTo(w, 5150)[0], { what: 'the reply' })
    const during = typingIn(w, 5150)
    expect(during.length).toBeGreaterThanOrEqual(5)
    expect(during.every((a) => a.action === 'typing' && a.at < reply.at)).toBe(true)
    // One per period, never doubled (a timer's tick may come a little early, never a period early).
    for (let i = 1; i < during.length; i++) expect(during[i]!.at - during[i - 1]!.at).toBeGreaterThan(RENEW_MS * 0.7)
    await noMoreTyping(w, 5150, 6160)
  })

  test('a failing sendChatAction changes nothing for the turn', async () => {
    const { w } = await typingWorld()
    w.telegram.failures.set('sendChatAction', [{ error_code: 400, description: 'Bad Request: chat not found' }, 'drop', { error_code: 429, description: 'Too Many Requests', retry_after: 30 }])
    w.llm.queue.push({ text: 'still **here**', delayMs: RENEW_MS * 8 })
    w.telegram.pushMessage(7170, 'hello')
    const reply = await waitFor(() => sentTo(w, 7170)[0], { what: 'the reply' })
    expect(reply.text).toBe('still <b>here</b>')
    // All three were tried (and failed), none retried in between (not even after the 429's 30 s), and the
    // renewals went on: the reply went out once.
    expect(w.telegram.calls.filter((c) => c.method === 'sendChatAction').length).toBeGreaterThanOrEqual(5)
    expect(w.telegram.failures.get('sendChatAction')).toEqual([])
    expect(sentTo(w, 7170)).toHaveLength(1)
  })

  test('a failed turn stops it', async () => {
    const { w, url } = await typingWorld()
    w.llm.queue.push({ status: 500, delayMs: RENEW_MS * 4 })
    w.telegram.pushMessage(9190, 'break')
    await waitFor(async () => ((await (await fetch(`${url}/api/status`)).json()) as any).queue.failed === 1, { what: 'the failed message' })
    expect(typingIn(w, 9190).length).toBeGreaterThanOrEqual(2)
    await noMoreTyping(w, 9190, 9191)
    expect(sentTo(w, 9190)).toHaveLength(0)
  })

  test('a turn cut by agent.timeoutMs stops it', async () => {
    const { w, url } = await typingWorld({ agent: { timeoutMs: RENEW_MS * 12 } })
    // The model would answer long after the turn's time limit.
    w.llm.queue.push({ text: 'too late', delayMs: 60_000 })
    w.telegram.pushMessage(3130, 'take your time')
    await waitFor(async () => ((await (await fetch(`${url}/api/status`)).json()) as any).queue.failed === 1, { what: 'the timed-out message' })
    expect(typingIn(w, 3130).length).toBeGreaterThanOrEqual(5)
    await noMoreTyping(w, 3130, 3131)
    expect(sentTo(w, 3130)).toHaveLength(0)
  })

  test('a channel reloaded mid-turn: the turn keeps its sender, whose typing stops with the turn', async () => {
    const { w } = await typingWorld()
    w.llm.queue.push({ text: 'answered across a reload', delayMs: 2_500 })
    w.telegram.pushMessage(2120, 'reload now')
    await waitFor(() => typingIn(w, 2120)[0], { what: 'the first chat action' })
    // The channel's sender is made anew (its allowlist changed) while the turn runs.
    writeConfig(w.home, { ...w.config, channels: { ...w.config.channels, telegram: { ...w.config.channels.telegram, allowFrom: [2120, 2121] } } })
    await waitFor(() => logLines(w).find((line) => line.msg === 'config reloaded' && JSON.stringify(line.applied).includes('channels.telegram')), { what: 'the reload' })
    expect(sentTo(w, 2120)).toHaveLength(0)
    const reply = await waitFor(() => sentTo(w, 2120)[0], { what: 'the reply' })
    expect(reply.text).toBe('answered across a reload')
    await noMoreTyping(w, 2120, 2121)
    // The new sender shows it too.
    expect(typingIn(w, 2121).length).toBeGreaterThan(5)
  })

  test('a gateway that stops mid-turn stops it, even for a turn that outlives the drain (restarted in its process)', async () => {
    const w = worlds.track(await makeWorld({ env: { XOPCBOT_TEST_TYPING_RENEW_MS: String(RENEW_MS), XOPCBOT_NO_RESPAWN: '1', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1' } }))
    writeConfig(w.home, { ...w.config, gateway: { ...w.config.gateway, shutdownTimeoutMs: 100 } })
    const gateway = worlds.trackGateway(await w.start())
    // The model answers long after the drain gave up: the turn goes on in the process, its reply never delivered.
    w.llm.queue.push({ text: 'from the stopped gateway', delayMs: 60_000 })
    w.telegram.pushMessage(1110, 'slow one')
    await waitFor(() => typingIn(w, 1110).length >= 2, { what: 'typing' })
    gateway.proc.kill('SIGUSR1')
    await waitFor(() => logLines(w).find((line) => line.msg === 'gateway restarted in this process'), { what: 'the restart in the process' })
    // The new gateway answers the message again (the fake model echoes now) and delivers that reply.
    const reply = await waitFor(() => sentTo(w, 1110)[0], { what: 'the reply after the restart' })
    expect(reply.text).toBe('echo: slow one')
    await noMoreTyping(w, 1110, 1111)
    expect(sentTo(w, 1110)).toHaveLength(1)
  })
})
