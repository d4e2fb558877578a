import { Elysia } from 'elysia'
import { z } from 'zod'
import type { Agent } from '../agent/agent'
import { SessionKey } from '../agent/sessions'
import type { Logger } from '../logging/logger'
import { streamError } from './errors'
import { requestIdOf } from './request-id'
import { sseResponse } from './sse'

export const AgentRequest = z.strictObject({
  message: z.string().min(1, 'must be a non-empty string').max(100_000, 'must be at most 100000 characters'),
  session: SessionKey.default('default'),
  stream: z.boolean().default(false),
})

/** A turn as Server-Sent Events: `delta` {text} as the reply grows, then `done` {reply, session, model} or `error`. */
function streamTurn(agent: Agent, body: z.infer<typeof AgentRequest>, request: Request, log: Logger, requestId: string | undefined, redact?: (text: string) => string): Response {
  return sseResponse(async (write) => {
    const send = (event: string, data: unknown) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    try {
      const result = await agent.turn({ session: body.session, message: body.message, signal: request.signal, onDelta: (text) => send('delta', { text }) })
      send('done', { reply: result.reply, session: result.session, model: result.model })
    } catch (error) {
      send('error', streamError(error, log, requestId, redact).toJSON())
    }
  })
}

/** POST /api/agent (SPEC §6). */
export function agentRoutes(agent: Agent, log: Logger, redact?: (text: string) => string) {
  return new Elysia({ name: 'agent', prefix: '/api' }).post(
    '/agent',
    async function talkToAgent({ body, request }) {
      const wantsStream = body.stream || (request.headers.get('accept') ?? '').includes('text/event-stream')
      if (wantsStream) return streamTurn(agent, body, request, log, requestIdOf(request), redact)
      const result = await agent.turn({ session: body.session, message: body.message, signal: request.signal })
      return { status: 'ok', reply: result.reply, session: result.session, model: result.model }
    },
    { body: AgentRequest },
  )
}
