import { Elysia } from 'elysia'
import type { Received } from '../channels/channel'
import type { ChannelManager } from '../channels/manager'
import { AppError } from '../errors'
import { rawBodyOf } from './body'

/** What a channel's answer to an inbound request is in HTTP: 200 with the envelope, or the refusal as an error. */
export function webhookReply(received: Received): { status: 200; body: { status: 'ok'; message_id?: string; duplicate?: true } } {
  switch (received.kind) {
    case 'accepted':
      return { status: 200, body: { status: 'ok', ...(received.messageId === undefined ? {} : { message_id: received.messageId }) } }
    case 'duplicate':
      return { status: 200, body: { status: 'ok', duplicate: true } }
    case 'refused':
      throw new AppError(REFUSALS[received.reason], received.message)
  }
}

const REFUSALS = { unauthorized: 'UNAUTHORIZED', invalid: 'INVALID_REQUEST', 'not-found': 'CHANNEL_NOT_FOUND' } as const

/**
 * POST /api/webhook/:channel — public: a channel checks its own signature or secret instead of the API token.
 * Every name that takes no such requests (unknown, disabled, polling) gets one and the same 404 that names no
 * channel: a stranger learns nothing about which channels are configured.
 */
export function webhookRoutes(deps: { channels: ChannelManager }) {
  return new Elysia({ name: 'webhooks', prefix: '/api' }).post('/webhook/:channel', async function receiveWebhook({ params, request, body, set }) {
    const receiver = deps.channels.webhookReceiver(params.channel)
    if (!receiver) throw new AppError('CHANNEL_NOT_FOUND', 'no channel takes webhook requests at this path')
    const reply = webhookReply(await receiver.receive({ headers: request.headers, raw: rawBodyOf(request), body }))
    set.status = reply.status
    return reply.body
  })
}
