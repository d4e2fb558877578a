import { randomUUID } from 'node:crypto'
import { Elysia } from 'elysia'
import { z } from 'zod'
import type { Agent } from '../agent/agent'
import { SessionKey } from '../agent/sessions'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { describeProblem } from '../validation'
import { streamError } from './errors'
import { requestIdOf } from './request-id'
import { sseResponse } from './sse'

const ContentPart = z.looseObject({ type: z.string(), text: z.string().optional() })
const ChatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function'], 'must be system, developer, user, assistant or tool'),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
})

/** The request of OpenAI's chat completions; parameters other than these are accepted and ignored. */
export const ChatCompletionRequest = z.looseObject({
  model: z.string().min(1, 'must be a non-empty string'),
  messages: z.array(ChatMessage).min(1, 'must hold at least one message'),
  stream: z.boolean().nullable().optional(),
  user: z.string().max(256).optional(),
})

export const MODEL_ID = 'xopcbot'
const SESSION_HEADER = 'x-xopcbot-session'

function textOf(content: z.infer<typeof ChatMessage>['content']): string {
  if (typeof content === 'string') return content
  return (content ?? []).map((part) => (part.type === 'text' && part.text ? part.text : '')).join('')
}

/**
 * The session a chat completion continues: the X-Xopcbot-Session header, else `openai:<user>` for the
 * request's `user`, else `openai`. The gateway keeps the history, so only the last user message is new.
 */
function sessionFor(request: Request, user: string | undefined): string {
  const header = request.headers.get(SESSION_HEADER)
  if (header !== null) {
    const parsed = SessionKey.safeParse(header)
    if (!parsed.success) throw new AppError('INVALID_REQUEST', `${SESSION_HEADER}: ${describeProblem(parsed.error.issues[0]!)}`)
    return parsed.data
  }
  if (user) return `openai:${user.replace(/[^A-Za-z0-9_.:@-]/g, '_').slice(0, 120)}`
  return 'openai'
}

/**
 * POST /v1/chat/completions and GET /v1/models (OpenAI's protocol), so OpenAI client libraries talk to the
 * assistant as they are. The token is the API key. Each request is one agent turn with the last user message.
 */
export function openAiRoutes(agent: Agent, log: Logger, redact?: (text: string) => string) {
  return new Elysia({ name: 'openai', prefix: '/v1' })
    .get('/models', function listModels() {
      return { object: 'list', data: [{ id: MODEL_ID, object: 'model', created: 0, owned_by: 'xopcbot' }] }
    })
    .post(
      '/chat/completions',
      async function chatCompletions({ body, request }) {
        const last = [...body.messages].reverse().find((m) => m.role === 'user')
        const message = last ? textOf(last.content) : ''
        if (!message) throw new AppError('INVALID_REQUEST', 'messages: needs a user message with text')
        const session = sessionFor(request, body.user)
        const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`
        const created = Math.floor(Date.now() / 1000)
        const model = body.model
        if (!body.stream) {
          const result = await agent.turn({ session, message, signal: request.signal })
          const prompt = result.usage.inputTokens ?? 0
          const completion = result.usage.outputTokens ?? 0
          // The model that answered: with fallbacks the client learns which one it was. A stream's chunks keep the
          // requested name, since they go out before the turn knows.
          return {
            id,
            object: 'chat.completion',
            created,
            model: result.model,
            choices: [{ index: 0, message: { role: 'assistant', content: result.reply, refusal: null }, finish_reason: 'stop', logprobs: null }],
            usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
          }
        }
        const requestId = requestIdOf(request)
        const chunk = (delta: unknown, finish: string | null) => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })
        return sseResponse(async (write) => {
          const send = (data: unknown) => write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
          send(chunk({ role: 'assistant', content: '' }, null))
          try {
            await agent.turn({ session, message, signal: request.signal, onDelta: (text) => send(chunk({ content: text }, null)) })
            send(chunk({}, 'stop'))
          } catch (error) {
            const appError = streamError(error, log, requestId, redact)
            send({ error: { message: appError.message, type: appError.code, code: appError.code } })
          }
          send('[DONE]')
        })
      },
      { body: ChatCompletionRequest },
    )
}
