export { BotIdentity, decideAccess, inAllowFrom, mentionsBot, pairingReply, stripLeadingMention, type Access } from './access'
export { markdownToTelegramHtml, splitTelegramHtml, visibleText } from './format'
export { splitMessage, TELEGRAM_MAX_TEXT, TelegramSender, TYPING_RENEW_MS } from './sender'
export { SECRET_HEADER, TelegramSource, type TelegramSourceDeps } from './source'
