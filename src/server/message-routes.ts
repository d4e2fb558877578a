import { Elysia } from 'elysia'
import { z } from 'zod'
import type { ChannelManager } from '../channels/manager'
import type { InboundQueue } from '../channels/inbound'
import { AppError } from '../errors'
import { rawBodyOf } from './body'

const ChatId = z.union([z.string().min(1, 'must be a non-empty string').max(256), z.int()], 'must be a string or an integer')
const Content = z.string().min(1, 'must be a non-empty string').max(100_000, 'must be at most 100000 characters')

export const MessageRequest = z.strictObject({ channel: z.string().min(1, 'must be a non-empty string'), chat_id: ChatId, content: Content })
export const SyncMessageRequest = MessageRequest.extend({
  timeout_ms: z.int().min(1, 'must be at least 1').max(600_000, 'must be at most 600000').optional(),
})
export const SendRequest = MessageRequest

/** POST /api/message, /api/message/sync, GET /api/message/:id, POST /api/send, POST /api/webhook/:channel. */
export function messageRoutes(deps: { channels: ChannelManager; queue: InboundQueue; defaultSyncTimeoutMs: number }) {
  const { channels, queue } = deps
  return new Elysia({ name: 'messages', prefix: '/api' })
    .post(
      '/message',
      function acceptMessage({ body, set }) {
        channels.get(body.channel)
        const id = queue.accept({ channel: body.channel, chatId: String(body.chat_id), content: body.content }, 'api')
        set.status = 202
        return { status: 'ok', message_id: id }
      },
      { body: MessageRequest },
    )
    .post(
      '/message/sync',
      async function acceptAndWait({ body }) {
        channels.get(body.channel)
        const id = queue.accept({ channel: body.channel, chatId: String(body.chat_id), content: body.content }, 'api')
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
    .post(
      '/send',
      async function sendVerbatim({ body }) {
        const channel = channels.get(body.channel)
        try {
          const messageId = await channel.send(String(body.chat_id), body.content)
          return { status: 'ok', message_id: messageId }
        } catch (error) {
          throw new AppError('DELIVERY_FAILED', `could not deliver to channel "${body.channel}": ${(error as Error).message}`)
        }
      },
      { body: SendRequest },
    )
    .post('/webhook/:channel', async function receiveWebhook({ params, request, body, set }) {
      const channel = channels.webhookReceiver(params.channel)
      const result = await channel.receive(request, rawBodyOf(request), body)
      set.status = result.status
      return result.body
    })
}
