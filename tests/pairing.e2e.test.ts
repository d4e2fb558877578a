import { afterEach, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeWorld, type World } from './helpers/channels'
import { runCli, startGateway, type RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

// Telegram access is closed by default (SPEC §8): strangers are offered a pairing code, groups are off, and in
// groups the bot answers only when mentioned. The real gateway runs against the fake Bot API and the fake model;
// the owner's side is the real CLI and the real API.

const worlds: World[] = []
const gateways: RunningGateway[] = []
async function world(options: Parameters<typeof makeWorld>[0] = {}, args: string[] = []) {
  const w = await makeWorld(options)
  worlds.push(w)
  const start = async () => {
    const gateway = await startGateway({ home: w.home, port: w.port, args })
    gateways.push(gateway)
    return gateway
  }
  return { w, gateway: await start(), restart: start }
}
afterEach(async () => {
  for (const g of gateways.splice(0)) if (g.proc.exitCode === null) await g.stop()
  for (const w of worlds.splice(0)) w.stop()
})

const CODE = /pairing code: ([A-Z0-9]{4}-[A-Z0-9]{4})/
const STRANGER = { id: 700, username: 'stranger' }
const sentTo = (w: World, chat: number | string) => w.telegram.sent.filter((m) => m.chat_id === String(chat))
/** The gateway has taken in every update up to `updateId` (it asked for the next ones): a refusal is final by now. */
const pastUpdate = (w: World, updateId: number) => waitFor(() => w.telegram.offsets.some((offset) => offset !== undefined && offset > updateId), { what: `the offset to pass update ${updateId}` })
const cli = (w: World, ...args: string[]) => runCli(args, { home: w.home })
const dbOf = (w: World) => new Database(join(w.home, '.xopcbot', 'xopcbot.db'))

/** A stranger's first message; resolves to the code the bot sent back. */
async function pairingCodeFor(w: World, from = STRANGER, text = 'hello?'): Promise<string> {
  const before = sentTo(w, from.id).length
  w.telegram.pushMessage(from.id, text, from)
  const reply = await waitFor(() => sentTo(w, from.id)[before], { what: 'the pairing-code reply' })
  const code = CODE.exec(reply.text)?.[1]
  if (!code) throw new Error(`not a pairing reply: ${reply.text}`)
  expect(reply.text).toBe(`xopcbot: access not configured. Your pairing code: ${code} (valid for 1 hour). Ask the owner to run: xopcbot pairing approve ${code}`)
  return code
}

describe('direct messages, dmPolicy "pairing" (the default)', () => {
  test('a stranger gets one code and nothing else; the owner approves it with the CLI; it survives a restart; revoke closes it again', async () => {
    const { w, gateway, restart } = await world({ openDms: false })
    const code = await pairingCodeFor(w)

    const second = w.telegram.pushMessage(STRANGER.id, 'anyone there?', STRANGER)
    await pastUpdate(w, second)
    expect(sentTo(w, STRANGER.id)).toHaveLength(1)
    expect(w.llm.calls).toHaveLength(0)
    const status = await json(await fetch(`${gateway.url}/api/status`))
    expect(status.queue).toEqual({ queued: 0, processing: 0, delivered: 0, failed: 0 })
    expect((await json(await fetch(`${gateway.url}/api/sessions`))).total).toBe(0)
    const refusals = await waitFor(() => {
      const lines = readFileSync(join(w.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line))
      const found = lines.filter((line) => line.msg.startsWith('telegram message refused'))
      return found.length === 2 ? found : null
    }, { what: 'two refusals in the log' })
    expect(refusals.map(({ level, channel, senderId, chatId, reason, code: logged }) => ({ level, channel, senderId, chatId, reason, code: logged }))).toEqual([
      { level: 'info', channel: 'telegram', senderId: 700, chatId: 700, reason: 'sender not approved (dmPolicy "pairing")', code },
      { level: 'info', channel: 'telegram', senderId: 700, chatId: 700, reason: 'sender not approved (dmPolicy "pairing"); a pairing code was already sent', code: undefined },
    ])
    const log = readFileSync(join(w.home, '.xopcbot', 'logs', 'gateway.log'), 'utf8')
    expect(log).not.toContain('anyone there?')
    expect(log).not.toContain(w.telegram.token)

    const listed = await cli(w, 'pairing', 'list', '--json')
    expect(listed.code).toBe(0)
    const { requests, approved } = JSON.parse(listed.stdout)
    expect(approved).toEqual([])
    expect(requests).toHaveLength(1)
    expect(requests[0]).toMatchObject({ code, channel: 'telegram', sender_id: '700', username: 'stranger', chat_id: '700' })
    expect(Date.parse(requests[0].expires_at) - Date.parse(requests[0].created_at)).toBe(60 * 60 * 1000)
    const human = await cli(w, 'pairing', 'list')
    expect(human.stdout).toContain('Pending pairing requests:')
    expect(human.stdout).toMatch(new RegExp(`${code}\\s+telegram\\s+700\\s+@stranger`))

    const approvedNow = await cli(w, 'pairing', 'approve', code.toLowerCase())
    expect(approvedNow).toMatchObject({ code: 0, stdout: '✅ Approved telegram sender 700 (@stranger); their next message reaches the assistant.\n' })
    w.telegram.pushMessage(STRANGER.id, 'now?', STRANGER)
    await waitFor(() => sentTo(w, STRANGER.id).find((m) => m.text === 'echo: now?'), { what: 'the answer after approval' })
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['now?'])
    expect(JSON.parse((await cli(w, 'pairing', 'list', '--json')).stdout)).toMatchObject({ requests: [], approved: [{ channel: 'telegram', sender_id: '700', username: 'stranger' }] })

    expect(await gateway.stop()).toBe(0)
    await restart()
    w.telegram.pushMessage(STRANGER.id, 'after restart', STRANGER)
    await waitFor(() => sentTo(w, STRANGER.id).find((m) => m.text === 'echo: after restart'), { what: 'the answer after a restart' })

    const revoked = await cli(w, 'pairing', 'revoke', 'telegram', '@stranger')
    expect(revoked).toMatchObject({ code: 0, stdout: '✅ Revoked telegram sender 700 (@stranger); their messages are refused again.\n' })
    const newCode = await pairingCodeFor(w, STRANGER, 'after revoke')
    expect(newCode).not.toBe(code)
    expect(sentTo(w, STRANGER.id).some((m) => m.text === 'echo: after revoke')).toBe(false)
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['now?', 'after restart'])

    const again = await cli(w, 'pairing', 'revoke', 'telegram', '@stranger')
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('❌ @stranger is not an approved sender of channel "telegram"')
  }, 60_000)

  test('an unknown or expired code is refused with exit 1 and a sentence', async () => {
    const { w } = await world({ openDms: false })
    const unknown = await cli(w, 'pairing', 'approve', 'ZZZZ-ZZZZ')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toBe('❌ No pending pairing request has the code ZZZZ-ZZZZ; see the pending ones with: xopcbot pairing list\n')

    const code = await pairingCodeFor(w)
    const db = dbOf(w)
    try {
      // An hour passing, as far as the stored request is concerned.
      db.query("UPDATE pairing_requests SET expires_at = '2000-01-01T00:00:00.000Z' WHERE code = ?").run(code)
    } finally {
      db.close()
    }
    const expired = await cli(w, 'pairing', 'approve', code)
    expect(expired.code).toBe(1)
    expect(expired.stderr).toBe(`❌ The pairing code ${code} expired at 2000-01-01T00:00:00.000Z; the sender gets a new code by writing to the bot again\n`)
    expect(JSON.parse((await cli(w, 'pairing', 'list', '--json')).stdout)).toEqual({ requests: [], approved: [] })

    const usage = await cli(w, 'pairing', 'approve')
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('a pairing code is required')
  }, 60_000)

  test('the API: GET /api/pairing, approve (the sender is told), revoke; the token is needed when one is set', async () => {
    const token = 'pairing-token-0123456789'
    const { w, gateway } = await world({ openDms: false }, ['--token', token])
    const auth = { authorization: `Bearer ${token}` }
    const code = await pairingCodeFor(w)

    expect((await fetch(`${gateway.url}/api/pairing`)).status).toBe(401)
    expect((await postJson(`${gateway.url}/api/pairing/approve`, { code })).status).toBe(401)
    expect((await postJson(`${gateway.url}/api/pairing/revoke`, { channel: 'telegram', sender: 700 })).status).toBe(401)

    const listed = await json(await fetch(`${gateway.url}/api/pairing`, { headers: auth }))
    expect(listed).toMatchObject({ status: 'ok', requests: [{ code, channel: 'telegram', sender_id: '700', username: 'stranger', chat_id: '700' }], approved: [] })
    expect(Object.keys(listed.requests[0]).sort()).toEqual(['channel', 'chat_id', 'code', 'created_at', 'expires_at', 'sender_id', 'username'])

    const unknown = await postJson(`${gateway.url}/api/pairing/approve`, { code: 'ZZZZ-ZZZZ' }, auth)
    expect(unknown.status).toBe(404)
    expect(await json(unknown)).toEqual({ error: { code: 'NOT_FOUND', message: 'no pending pairing request has the code ZZZZ-ZZZZ; see the pending ones with: xopcbot pairing list' } })
    const invalid = await postJson(`${gateway.url}/api/pairing/approve`, {}, auth)
    expect(invalid.status).toBe(400)
    expect((await json(invalid)).error.message).toContain('code: is required')

    const approved = await postJson(`${gateway.url}/api/pairing/approve`, { code }, auth)
    expect(approved.status).toBe(200)
    expect(await json(approved)).toMatchObject({ status: 'ok', approval: { channel: 'telegram', sender_id: '700', username: 'stranger' } })
    await waitFor(() => sentTo(w, 700).find((m) => m.text.startsWith('✅')), { what: 'the approval notice' })
    w.telegram.pushMessage(700, 'hi again', STRANGER)
    await waitFor(() => sentTo(w, 700).find((m) => m.text === 'echo: hi again'), { what: 'the answer' })
    expect((await json(await fetch(`${gateway.url}/api/pairing`, { headers: auth }))).approved).toMatchObject([{ sender_id: '700' }])

    const revoked = await postJson(`${gateway.url}/api/pairing/revoke`, { channel: 'telegram', sender: 700 }, auth)
    expect(await json(revoked)).toMatchObject({ status: 'ok', revoked: [{ channel: 'telegram', sender_id: '700' }] })
    const nothing = await postJson(`${gateway.url}/api/pairing/revoke`, { channel: 'telegram', sender: 700 }, auth)
    expect(nothing.status).toBe(404)
    expect((await json(nothing)).error.code).toBe('NOT_FOUND')

    const openapi = await json(await fetch(`${gateway.url}/openapi.json`))
    expect(openapi.paths['/api/pairing/approve'].post.requestBody.content['application/json'].schema.required).toEqual(['code'])
    expect(openapi.paths['/api/pairing'].get.summary).toContain('Pending pairing requests')
  }, 60_000)

  test('allowFrom admits without pairing; dmPolicy "allowlist" ignores everyone else without a code', async () => {
    const { w } = await world({ openDms: false, telegram: { dmPolicy: 'allowlist', allowFrom: ['@Friend'] } })
    const refused = w.telegram.pushMessage(701, 'let me in', { id: 701, username: 'mallory' })
    w.telegram.pushMessage(702, 'it is me', { id: 702, username: 'friend' })
    await waitFor(() => sentTo(w, 702)[0], { what: 'the answer to the allowed sender' })
    await pastUpdate(w, refused)
    expect(sentTo(w, 701)).toHaveLength(0)
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['it is me'])
  }, 30_000)

  test('dmPolicy "open" admits everyone', async () => {
    const { w } = await world({ telegram: { dmPolicy: 'open' } })
    w.telegram.pushMessage(703, 'hi', { id: 703 })
    await waitFor(() => sentTo(w, 703).find((m) => m.text === 'echo: hi'), { what: 'the answer' })
    expect(sentTo(w, 703)).toHaveLength(1)
  }, 30_000)

  test('Telegram webhook mode takes the same decision: a stranger gets a code, no turn', async () => {
    const secret = 'tg-secret_123'
    const { w, gateway } = await world({ openDms: false, telegram: { mode: 'webhook', publicUrl: 'https://bot.example.com', webhookSecret: secret } })
    await waitFor(() => w.telegram.webhook, { what: 'setWebhook' })
    const update = { update_id: 5, message: { message_id: 1, date: 0, chat: { id: 704, type: 'private', first_name: 'T' }, from: { id: 704, is_bot: false, first_name: 'T' }, text: 'via webhook' } }
    const response = await postJson(`${gateway.url}/api/webhook/telegram`, update, { 'x-telegram-bot-api-secret-token': secret })
    expect(response.status).toBe(200)
    const reply = await waitFor(() => sentTo(w, 704)[0], { what: 'the pairing code' })
    expect(reply.text).toMatch(CODE)
    expect(w.llm.calls).toHaveLength(0)
    expect((await json(await fetch(`${gateway.url}/api/status`))).queue.queued).toBe(0)
  }, 30_000)
})

describe('groups', () => {
  test('default config: nothing in a group is answered, not even a mention; no pairing code either', async () => {
    const { w } = await world({ openDms: false, telegram: { allowFrom: [42] } })
    const inGroup = w.telegram.pushMessage(-100, '@fake_bot hello', { id: 42, username: 'owner' }, { chatType: 'supergroup' })
    w.telegram.pushMessage(42, 'direct', { id: 42, username: 'owner' })
    await waitFor(() => sentTo(w, 42)[0], { what: 'the answer to the allowFrom sender' })
    await pastUpdate(w, inGroup)
    expect(sentTo(w, 42).map((m) => m.text)).toEqual(['echo: direct'])
    expect(sentTo(w, -100)).toHaveLength(0)
    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['direct'])
  }, 30_000)

  test('groupPolicy "open" with requireMention: only a mention of the bot or a reply to it is answered', async () => {
    const { w } = await world({ telegram: { groupPolicy: 'open' } })
    const group = -200
    const member = { id: 7, username: 'member' }
    const push = (text: string, replyTo?: number) => w.telegram.pushMessage(group, text, member, { chatType: 'group', ...(replyTo !== undefined ? { replyTo } : {}) })
    const answered = (text: string) => waitFor(() => sentTo(w, group).find((m) => m.text === `echo: ${text}`), { what: `the answer to "${text}"` })

    const chatter = push('just chatting')
    push('@other_bot hi')
    push('@fake_bot what is up')
    const first = await answered('what is up')

    push('so true', w.telegram.messageIdOf(chatter)) // a reply, but not to the bot
    push('thanks', first.message_id)
    await answered('thanks')

    push('is @FAKE_BOT listening?')
    await answered('is @FAKE_BOT listening?')

    expect(w.llm.calls.map((c) => c.lastUser)).toEqual(['what is up', 'thanks', 'is @FAKE_BOT listening?'])
    expect(sentTo(w, group)).toHaveLength(3)
  }, 30_000)
})
