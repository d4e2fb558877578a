import type { Message } from 'grammy/types'
import { z } from 'zod'
import type { TelegramChannel as TelegramConfig } from '../../config/schema'

/** The bot's own account, from getMe: mentions and replies in groups are recognised by it. */
export const BotIdentity = z.object({ id: z.int(), username: z.string().min(1) })
export type BotIdentity = z.infer<typeof BotIdentity>

type AccessConfig = Pick<TelegramConfig, 'allowFrom' | 'dmPolicy' | 'groupPolicy' | 'groups' | 'requireMention'>

/** Whether a message reaches the agent, and with what text; a refusal says why (for the log) and whether to offer pairing. */
export type Access = { admit: true; content: string } | { admit: false; reason: string; offerPairing?: boolean }

export function inAllowFrom(allowFrom: AccessConfig['allowFrom'], from: { id: number; username?: string }): boolean {
  const username = from.username?.toLowerCase()
  return allowFrom.some((entry) => String(entry) === String(from.id) || (!!username && String(entry).replace(/^@/, '').toLowerCase() === username))
}

/** The message names the bot: a mention entity, a text mention of its account, a /command@bot, or its @username in the text. */
export function mentionsBot(message: Pick<Message, 'text' | 'entities'>, bot: BotIdentity): boolean {
  const text = message.text ?? ''
  const handle = `@${bot.username}`.toLowerCase()
  for (const entity of message.entities ?? []) {
    const part = text.slice(entity.offset, entity.offset + entity.length).toLowerCase()
    if (entity.type === 'mention' && part === handle) return true
    if (entity.type === 'text_mention' && entity.user.id === bot.id) return true
    if (entity.type === 'bot_command' && part.endsWith(handle)) return true
  }
  const lower = text.toLowerCase()
  for (let at = lower.indexOf(handle); at >= 0; at = lower.indexOf(handle, at + 1)) {
    if (!/\w/.test(lower[at - 1] ?? '') && !/\w/.test(lower[at + handle.length] ?? '')) return true
  }
  return false
}

/** "@bot, what time is it?" → "what time is it?"; a message that is nothing but the mention stays as it is. */
export function stripLeadingMention(text: string, bot: BotIdentity): string {
  const handle = `@${bot.username}`
  const trimmed = text.trimStart()
  if (trimmed.slice(0, handle.length).toLowerCase() !== handle.toLowerCase() || /\w/.test(trimmed[handle.length] ?? '')) return text
  const rest = trimmed.slice(handle.length).replace(/^[\s,:;.!-]+/, '')
  return rest || text
}

/**
 * Who may talk to the bot (SPEC §8). Direct messages: a sender in allowFrom always; then dmPolicy — "open"
 * everyone, "pairing" senders the owner approved (others are offered a code), "allowlist" no one else.
 * Groups: groupPolicy ("disabled", "allowlist" of chat ids in `groups`, "open"), then with requireMention only
 * messages that mention the bot or reply to it.
 */
export function decideAccess(message: Message, config: AccessConfig, bot: BotIdentity | null, isApproved: (senderId: string) => boolean): Access {
  const text = message.text ?? ''
  const { chat, from } = message
  if (chat.type === 'private') {
    if (!from) return { admit: false, reason: 'no sender' }
    if (inAllowFrom(config.allowFrom, from) || config.dmPolicy === 'open') return { admit: true, content: text }
    if (config.dmPolicy === 'pairing') {
      return isApproved(String(from.id)) ? { admit: true, content: text } : { admit: false, reason: 'sender not approved (dmPolicy "pairing")', offerPairing: true }
    }
    return { admit: false, reason: 'sender not in allowFrom (dmPolicy "allowlist")' }
  }
  if (chat.type === 'group' || chat.type === 'supergroup') {
    if (config.groupPolicy === 'disabled') return { admit: false, reason: 'group chats are off (groupPolicy "disabled")' }
    if (config.groupPolicy === 'allowlist' && !config.groups.some((id) => String(id) === String(chat.id))) {
      return { admit: false, reason: 'group not in groups (groupPolicy "allowlist")' }
    }
    if (!config.requireMention) return { admit: true, content: text }
    if (!bot) return { admit: false, reason: "the bot's own username is not known (getMe)" }
    const repliesToBot = message.reply_to_message?.from?.id === bot.id
    if (!repliesToBot && !mentionsBot(message, bot)) return { admit: false, reason: 'the bot was not mentioned (requireMention)' }
    return { admit: true, content: stripLeadingMention(text, bot) }
  }
  return { admit: false, reason: `${chat.type} chats are not handled` }
}

export const pairingReply = (code: string) =>
  `xopcbot: access not configured. Your pairing code: ${code} (valid for 1 hour). Ask the owner to run: xopcbot pairing approve ${code}`
