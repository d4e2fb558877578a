export { BotIdentity, decideAccess, inAllowFrom, mentionsBot, pairingReply, stripLeadingMention, type Access } from './access'
export { splitMessage, TELEGRAM_MAX_TEXT, TelegramSender } from './sender'
export { SECRET_HEADER, TelegramSource, type TelegramSourceDeps } from './source'
