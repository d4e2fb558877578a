import { Elysia } from 'elysia'
import { z } from 'zod'
import type { Senders } from '../channels/senders'
import { AppError } from '../errors'
import type { InboundQueue } from '../messages/queue'
import { wholeNumber } from './params'

const ChatId = z.union([z.string().min(1, 'must be a non-empty string').max(256), z.int()], 'must be a string or an integer')
const Content = z.string().min(1, 'must be a non-empty string').max(100_000, 'must be at most 100000 characters')

export const MessageRequest = z.strictObject({ channel: z.string().min(1, 'must be a non-empty string'), chat_id: ChatId, content: Content })
export const SyncMessageRequest = MessageRequest.extend({
  timeout_ms: z.int().min(1, 'must be at least 1').max(600_000, 'must be at most 600000').optional(),
})
export const SendRequest = MessageRequest
export const MessageListQuery = z.object({
  limit: wholeNumber(1, 500).optional(),
  offset: wholeNumber(0, 1_000_000_000).optional(),
  state: z.enum(['queued', 'processing', 'delivered', 'failed'], 'must be one of queued, processing, delivered, failed').optional(),
  channel: z.string().min(1, 'must be a non-empty string').max(256).optional(),
})

/** POST /api/message, /api/message/sync, GET /api/message/:id, GET /api/messages, POST /api/send. */
export function messageRoutes(deps: { senders: Senders; queue: InboundQueue; defaultSyncTimeoutMs: number }) {
  const { senders, queue } = deps
  /** The sender of an enabled channel, or 404 CHANNEL_NOT_FOUND that says which exist. */
  const senderOf = (name: string) => senders.find(name) ?? throwNotFound(senders.whyMissing(name))
  return new Elysia({ name: 'messages', prefix: '/api' })
    .post(
      '/message',
      async function acceptMessage({ body, set }) {
        senderOf(body.channel)
        const id = await queue.accept({ channel: body.channel, chatId: String(body.chat_id), content: body.content }, 'api')
        set.status = 202
        return { status: 'ok', message_id: id }
      },
      { body: MessageRequest },
    )
    .post(
      '/message/sync',
      async function acceptAndWait({ body }) {
        senderOf(body.channel)
        const id = await queue.accept({ channel: body.channel, chatId: String(body.chat_id), content: body.content }, 'api')
        const timeoutMs = body.timeout_ms ?? deps.defaultSyncTimeoutMs
        const message = await queue.waitFor(id, timeoutMs)
        if (message.state === 'delivered') return { status: 'ok', reply: message.reply ?? '', message_id: id }
        if (message.state === 'failed') throw new AppError('AGENT_ERROR', `${message.error ?? 'the message failed'} (message_id ${id})`)
        throw new AppError('AGENT_ERROR', `no reply within timeout_ms (${timeoutMs} ms); the message stays queued and will be answered: GET /api/message/${id}`, { status: 504 })
      },
      { body: SyncMessageRequest },
    )
    .get('/message/:id', function getMessage({ params }) {
      const message = queue.get(params.id)
      if (!message) throw new AppError('MESSAGE_NOT_FOUND', `no message ${JSON.stringify(params.id)}`)
      return { status: 'ok', message }
    })
    .get(
      '/messages',
      function listMessages({ query }) {
        return { status: 'ok', messages: queue.recent({ limit: query.limit ?? 50, offset: query.offset ?? 0, state: query.state, channel: query.channel }) }
      },
      { query: MessageListQuery },
    )
    .post(
      '/send',
      async function sendVerbatim({ body }) {
        const sender = senderOf(body.channel)
        try {
          const messageId = await sender.send(String(body.chat_id), body.content)
          return { status: 'ok', message_id: messageId }
        } catch (error) {
          throw new AppError('DELIVERY_FAILED', `could not deliver to channel "${body.channel}": ${(error as Error).message}`)
        }
      },
      { body: SendRequest },
    )
}

function throwNotFound(message: string): never {
  throw new AppError('CHANNEL_NOT_FOUND', message)
}
