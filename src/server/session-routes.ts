import { Elysia } from 'elysia'
import { z } from 'zod'
import { StoredSessionKey, type SessionStore } from '../agent/sessions'
import { AppError } from '../errors'
import { wholeNumber } from './params'

export const SessionListQuery = z.object({
  limit: wholeNumber(1, 500).optional(),
  offset: wholeNumber(0, 1_000_000_000).optional(),
  channel: z.string().regex(/^[a-z0-9_-]{1,32}$/, 'must be a channel name').optional(),
})

/**
 * A key in a path is percent-encoded (encodeURIComponent: `/` is `%2F`) and decoded exactly once, by the
 * router, so `%252F` stays `%2F` and `+` stays `+`. Any stored key is accepted, channel keys with any chat id too.
 */
export const SessionParams = z.object({ key: StoredSessionKey })

const notFound = (key: string) => new AppError('SESSION_NOT_FOUND', `no session ${JSON.stringify(key)}`)

/** GET /api/sessions, GET and DELETE /api/sessions/:key (SPEC §6). */
export function sessionRoutes(store: SessionStore) {
  return new Elysia({ name: 'sessions', prefix: '/api/sessions' })
    .get(
      '/',
      function listSessions({ query }) {
        const { sessions, total } = store.list({ limit: query.limit ?? 50, offset: query.offset ?? 0, channel: query.channel })
        return { status: 'ok', sessions, total }
      },
      { query: SessionListQuery },
    )
    .get(
      '/:key',
      function getSession({ params }) {
        const session = store.get(params.key)
        if (!session) throw notFound(params.key)
        return { status: 'ok', session }
      },
      { params: SessionParams },
    )
    .delete(
      '/:key',
      function deleteSession({ params }) {
        if (!store.delete(params.key)) throw notFound(params.key)
        return { status: 'ok' }
      },
      { params: SessionParams },
    )
}
