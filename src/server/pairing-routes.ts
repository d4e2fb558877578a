import { Elysia } from 'elysia'
import { z } from 'zod'
import type { PairingStore } from '../channels/pairing'
import type { Senders } from '../channels/senders'
import type { Logger } from '../logging/logger'

export const ApproveRequest = z.strictObject({ code: z.string().min(1, 'must be a non-empty string').max(64, 'must be at most 64 characters') })
export const RevokeRequest = z.strictObject({
  channel: z.string().min(1, 'must be a non-empty string').max(64),
  sender: z.union([z.string().min(1, 'must be a non-empty string').max(256), z.int()], 'must be a user id or an @username'),
})

export const APPROVED_NOTICE = '✅ xopcbot: access approved. You can write to me now.'

/** GET /api/pairing, POST /api/pairing/approve, POST /api/pairing/revoke (SPEC §8: the owner's side of pairing). */
export function pairingRoutes(deps: { store: PairingStore; senders?: Senders | undefined; log: Logger }) {
  const { store } = deps
  const log = deps.log.withTag('pairing')
  return new Elysia({ name: 'pairing', prefix: '/api/pairing' })
    .get('/', function listPairing() {
      return { status: 'ok', requests: store.pending(), approved: store.approved() }
    })
    .post(
      '/approve',
      function approvePairing({ body }) {
        const { approval, request } = store.approve(body.code)
        log.info('pairing approved', { channel: approval.channel, senderId: approval.sender_id })
        // The sender learns at once that writing now works; a failed notice changes nothing about the approval.
        deps.senders
          ?.find(approval.channel)
          ?.send(request.chat_id, APPROVED_NOTICE)
          .catch((error) => log.warn('could not tell the sender about the approval', { channel: approval.channel, senderId: approval.sender_id, err: (error as Error).message }))
        return { status: 'ok', approval }
      },
      { body: ApproveRequest },
    )
    .post(
      '/revoke',
      function revokePairing({ body }) {
        const revoked = store.revoke(String(body.sender), body.channel)
        log.info('pairing revoked', { channel: body.channel, senders: revoked.map((a) => a.sender_id) })
        return { status: 'ok', revoked }
      },
      { body: RevokeRequest },
    )
}
