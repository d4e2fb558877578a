import { describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Message } from 'grammy/types'
import { normaliseCode, PAIRING_TTL_MS, PairingStore } from '../src/channels/pairing'
import { decideAccess, mentionsBot, stripLeadingMention } from '../src/channels/telegram'
import { TelegramChannel } from '../src/config/schema'
import { AppError } from '../src/errors'
import { openDatabase } from '../src/storage/db'

const CODE = /^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$/

function store(options: ConstructorParameters<typeof PairingStore>[2] = {}) {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-pairing-')), 'xopcbot.db'))
  const clock = { now: Date.parse('2026-03-01T12:00:00Z') }
  return { db, clock, pairing: new PairingStore(db, () => clock.now, options) }
}

const stranger = { channel: 'telegram', senderId: '700', username: 'Stranger', chatId: '700' }

function refusal(run: () => unknown): AppError {
  try {
    run()
  } catch (error) {
    if (error instanceof AppError) return error
    throw error
  }
  throw new Error('expected an AppError')
}

describe('PairingStore', () => {
  test('one code per sender until it expires; then a new one', () => {
    const { pairing, clock } = store()
    const first = pairing.request(stranger)
    if (first.status !== 'created') throw new Error(`expected a code, got ${first.status}`)
    expect(first.request.code).toMatch(CODE)
    expect(Date.parse(first.request.expires_at) - Date.parse(first.request.created_at)).toBe(PAIRING_TTL_MS)
    expect(pairing.request(stranger)).toEqual({ status: 'pending' })
    expect(pairing.pending().map((r) => r.code)).toEqual([first.request.code])
    clock.now += PAIRING_TTL_MS
    expect(pairing.pending()).toEqual([])
    const second = pairing.request(stranger)
    expect(second.status).toBe('created')
    if (second.status === 'created') expect(second.request.code).not.toBe(first.request.code)
  })

  test('at most maxPending requests per channel; other channels are not affected', () => {
    const { pairing } = store({ maxPending: 3 })
    for (const id of ['1', '2', '3']) expect(pairing.request({ ...stranger, senderId: id }).status).toBe('created')
    expect(pairing.request({ ...stranger, senderId: '4' })).toEqual({ status: 'full' })
    expect(pairing.request({ ...stranger, channel: 'other', senderId: '4' }).status).toBe('created')
  })

  test('a code drawn twice is drawn again', () => {
    const codes = ['AAAA-AAAA', 'AAAA-AAAA', 'BBBB-BBBB']
    const { pairing } = store({ newCode: () => codes.shift()! })
    expect(pairing.request(stranger)).toMatchObject({ request: { code: 'AAAA-AAAA' } })
    expect(pairing.request({ ...stranger, senderId: '701' })).toMatchObject({ request: { code: 'BBBB-BBBB' } })
  })

  test('approve: however the code is typed; moves the sender to the approvals; only once', () => {
    const { pairing } = store({ newCode: () => 'ABCD-EF23' })
    pairing.request(stranger)
    expect(pairing.isApproved('telegram', '700')).toBe(false)
    const { approval, request } = pairing.approve(' abcdef23 ')
    expect(approval).toMatchObject({ channel: 'telegram', sender_id: '700', username: 'Stranger' })
    expect(request.chat_id).toBe('700')
    expect(pairing.isApproved('telegram', '700')).toBe(true)
    expect(pairing.isApproved('other', '700')).toBe(false)
    expect(pairing.pending()).toEqual([])
    expect(pairing.approved()).toEqual([approval])
    const again = refusal(() => pairing.approve('ABCD-EF23'))
    expect(again.code).toBe('NOT_FOUND')
    expect(again.message).toBe('no pending pairing request has the code ABCD-EF23; see the pending ones with: xopcbot pairing list')
  })

  test('an expired code is refused and says so', () => {
    const { pairing, clock } = store({ newCode: () => 'ABCD-EF23' })
    pairing.request(stranger)
    clock.now += PAIRING_TTL_MS + 1
    const error = refusal(() => pairing.approve('ABCD-EF23'))
    expect(error.code).toBe('NOT_FOUND')
    expect(error.message).toContain('the pairing code ABCD-EF23 expired at 2026-03-01T13:00:00.000Z')
    expect(pairing.isApproved('telegram', '700')).toBe(false)
  })

  test('revoke by id or @username (any case), in one channel; nothing to revoke is NOT_FOUND', () => {
    const codes = ['AAAA-AAAA', 'BBBB-BBBB', 'CCCC-CCCC']
    const { pairing } = store({ newCode: () => codes.shift()! })
    pairing.request(stranger)
    pairing.request({ ...stranger, channel: 'work' })
    pairing.request({ ...stranger, senderId: '800', username: null, chatId: '800' })
    for (const code of ['AAAA-AAAA', 'BBBB-BBBB', 'CCCC-CCCC']) pairing.approve(code)
    expect(pairing.revoke('@stranger', 'telegram').map((a) => a.channel)).toEqual(['telegram'])
    expect(pairing.isApproved('telegram', '700')).toBe(false)
    expect(pairing.isApproved('work', '700')).toBe(true)
    expect(refusal(() => pairing.revoke('@800', 'telegram')).code).toBe('NOT_FOUND')
    expect(pairing.revoke('800', 'telegram')).toHaveLength(1)
    expect(refusal(() => pairing.revoke('800', 'telegram')).message).toBe('800 is not an approved sender of channel "telegram"; see them with: xopcbot pairing list')
  })

  test('approvals live in the database: a second store on the same file sees them', () => {
    const { db, pairing } = store({ newCode: () => 'ABCD-EF23' })
    pairing.request(stranger)
    pairing.approve('ABCD-EF23')
    expect(new PairingStore(db).isApproved('telegram', '700')).toBe(true)
  })

  test('normaliseCode', () => {
    expect(normaliseCode('abcd-ef23')).toBe('ABCD-EF23')
    expect(normaliseCode('ABCD EF23')).toBe('ABCD-EF23')
    expect(normaliseCode('nope')).toBe('nope')
  })
})

describe('decideAccess', () => {
  const bot = { id: 99, username: 'my_bot' }
  const config = (overrides: Record<string, unknown> = {}) => TelegramChannel.parse({ type: 'telegram', ...overrides })
  const dm = (text: string, from = { id: 5, username: 'bob' }) => ({ message_id: 1, date: 0, chat: { id: from.id, type: 'private', first_name: 'B' }, from: { is_bot: false, first_name: 'B', ...from }, text }) as Message
  const group = (text: string, extra: Record<string, unknown> = {}, chatId = -100) =>
    ({ message_id: 2, date: 0, chat: { id: chatId, type: 'supergroup', title: 'G' }, from: { id: 5, is_bot: false, first_name: 'B' }, text, ...extra }) as Message
  const nobody = () => false

  test('the defaults are closed: pairing for direct messages, no groups, mentions required', () => {
    const parsed = config()
    expect(parsed).toMatchObject({ dmPolicy: 'pairing', groupPolicy: 'disabled', groups: [], requireMention: true, allowFrom: [] })
    expect(decideAccess(dm('hi'), parsed, bot, nobody)).toEqual({ admit: false, reason: 'sender not approved (dmPolicy "pairing")', offerPairing: true })
    expect(decideAccess(group('@my_bot hi'), parsed, bot, nobody)).toMatchObject({ admit: false, reason: 'group chats are off (groupPolicy "disabled")' })
  })

  test('direct messages: allowFrom always; approved senders under pairing; allowlist admits no one else; open admits all', () => {
    expect(decideAccess(dm('hi'), config({ allowFrom: ['@BOB'] }), bot, nobody)).toEqual({ admit: true, content: 'hi' })
    expect(decideAccess(dm('hi'), config({ dmPolicy: 'allowlist', allowFrom: [5] }), bot, nobody)).toEqual({ admit: true, content: 'hi' })
    expect(decideAccess(dm('hi'), config(), bot, (id) => id === '5')).toEqual({ admit: true, content: 'hi' })
    const allowlist = decideAccess(dm('hi'), config({ dmPolicy: 'allowlist' }), bot, () => true)
    expect(allowlist).toEqual({ admit: false, reason: 'sender not in allowFrom (dmPolicy "allowlist")' })
    expect(decideAccess(dm('hi'), config({ dmPolicy: 'open' }), bot, nobody)).toEqual({ admit: true, content: 'hi' })
  })

  test('groups: allowlist by chat id, open; requireMention off answers everything', () => {
    const allowlist = config({ groupPolicy: 'allowlist', groups: ['-100'], requireMention: false })
    expect(decideAccess(group('hi'), allowlist, bot, nobody)).toEqual({ admit: true, content: 'hi' })
    expect(decideAccess(group('hi', {}, -101), allowlist, bot, nobody)).toMatchObject({ admit: false, reason: 'group not in groups (groupPolicy "allowlist")' })
    expect(decideAccess(group('hi', {}, -101), config({ groupPolicy: 'open', requireMention: false }), bot, nobody)).toEqual({ admit: true, content: 'hi' })
  })

  test('requireMention: a mention (entity, text, /command@bot, text mention) or a reply to the bot; the leading mention is stripped', () => {
    const open = config({ groupPolicy: 'open' })
    const decide = (message: Message) => decideAccess(message, open, bot, nobody)
    expect(decide(group('@My_Bot, what time is it?', { entities: [{ type: 'mention', offset: 0, length: 7 }] }))).toEqual({ admit: true, content: 'what time is it?' })
    expect(decide(group('ask @my_bot about it'))).toEqual({ admit: true, content: 'ask @my_bot about it' })
    expect(decide(group('/time@my_bot', { entities: [{ type: 'bot_command', offset: 0, length: 12 }] }))).toMatchObject({ admit: true })
    expect(decide(group('Bot, hi', { entities: [{ type: 'text_mention', offset: 0, length: 3, user: { id: 99, is_bot: true, first_name: 'Bot' } }] }))).toMatchObject({ admit: true })
    expect(decide(group('thanks', { reply_to_message: { message_id: 1, date: 0, chat: { id: -100, type: 'supergroup', title: 'G' }, from: { id: 99, is_bot: true, first_name: 'Bot' } } }))).toEqual({ admit: true, content: 'thanks' })
    expect(decide(group('hello everyone'))).toMatchObject({ admit: false, reason: 'the bot was not mentioned (requireMention)' })
    expect(decide(group('@my_bot_fan hi'))).toMatchObject({ admit: false })
    expect(decide(group('thanks', { reply_to_message: { message_id: 1, date: 0, chat: { id: -100, type: 'supergroup', title: 'G' }, from: { id: 5, is_bot: false, first_name: 'B' } } }))).toMatchObject({ admit: false })
  })

  test('mention helpers', () => {
    expect(mentionsBot({ text: 'hey @MY_BOT.' }, bot)).toBe(true)
    expect(mentionsBot({ text: 'mail me@my_bot.example' }, bot)).toBe(false)
    expect(stripLeadingMention('@my_bot', bot)).toBe('@my_bot')
    expect(stripLeadingMention('  @MY_BOT: hi', bot)).toBe('hi')
    expect(stripLeadingMention('@my_botty hi', bot)).toBe('@my_botty hi')
  })
})
