/**
 * A fake LLM provider: a real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol
 * (POST /v1/chat/completions, JSON and SSE, tool calls) and the Anthropic Messages protocol
 * (POST /v1/messages, JSON and SSE, tool use). Tests script its replies; by default it echoes the last
 * user message.
 *
 * By hand:  bun tests/fakes/llm.ts --port 18080
 * then point the gateway at it (see README, "Trying it without an API key").
 */

export type Reply =
  | { text: string; delayMs?: number; chunkDelayMs?: number; /** streaming: the connection breaks after this many pieces */ dropAfter?: number }
  | { toolCalls: { name: string; input: unknown }[]; delayMs?: number }
  | { status: number; body?: string; delayMs?: number }
  | { malformed: true; delayMs?: number }

export interface RecordedCall {
  protocol: 'openai' | 'anthropic'
  stream: boolean
  body: any
  /** the text of the last user message */
  lastUser: string
  startedAt: number
  finishedAt?: number
  /** the client (the gateway) closed the request before the reply was sent */
  aborted?: boolean
}

export interface FakeLlm {
  url: string
  port: number
  calls: RecordedCall[]
  /** replies given in order; when empty, `fallback` answers */
  queue: Reply[]
  fallback: (call: RecordedCall) => Reply
  /** GET /v1/models lists these ids (OpenAI or, with an anthropic-version header, Anthropic format) */
  models: string[]
  /** when set, GET /v1/models answers 401 unless this key comes as `Authorization: Bearer` or `x-api-key` */
  apiKey: string | null
  stop: () => void
}

function lastUserText(protocol: 'openai' | 'anthropic', body: any): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : []
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]
    if (m?.role !== 'user') continue
    if (typeof m.content === 'string') return m.content
    if (Array.isArray(m.content)) {
      const texts = m.content.filter((p: any) => p.type === 'text').map((p: any) => p.text)
      if (texts.length) return texts.join('\n')
      if (protocol === 'anthropic') continue
    }
  }
  return ''
}

const words = (text: string) => text.match(/\S+\s*|\s+/g) ?? ['']
const sse = (data: unknown, event?: string) => `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`
const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }

function openAiResponse(reply: Exclude<Reply, { status: number } | { malformed: true }>, stream: boolean, model: string, pace: (ms?: number) => Promise<void>): Response {
  const id = `chatcmpl-${crypto.randomUUID()}`
  const created = Math.floor(Date.now() / 1000)
  const toolCalls = 'toolCalls' in reply ? reply.toolCalls.map((t, index) => ({ index, id: `call_${crypto.randomUUID().slice(0, 8)}`, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.input) } })) : null
  if (!stream) {
    const message = toolCalls ? { role: 'assistant', content: null, tool_calls: toolCalls.map(({ index: _i, ...t }) => t) } : { role: 'assistant', content: (reply as { text: string }).text }
    return Response.json({ id, object: 'chat.completion', created, model, choices: [{ index: 0, message, finish_reason: toolCalls ? 'tool_calls' : 'stop' }], usage })
  }
  const chunk = (delta: unknown, finish: string | null = null) => sse({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })
  const body = new ReadableStream({
    async start(controller) {
      const send = (text: string) => controller.enqueue(new TextEncoder().encode(text))
      send(chunk({ role: 'assistant', content: '' }))
      if (toolCalls) send(chunk({ tool_calls: toolCalls }))
      else {
        let sent = 0
        for (const piece of words((reply as { text: string }).text)) {
          await pace((reply as { chunkDelayMs?: number }).chunkDelayMs)
          if (sent++ === (reply as { dropAfter?: number }).dropAfter) {
            controller.error(new Error('connection dropped by the fake'))
            return
          }
          send(chunk({ content: piece }))
        }
      }
      send(chunk({}, toolCalls ? 'tool_calls' : 'stop'))
      send(sse({ id, object: 'chat.completion.chunk', created, model, choices: [], usage }))
      send(sse('[DONE]'))
      controller.close()
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
}

function anthropicResponse(reply: Exclude<Reply, { status: number } | { malformed: true }>, stream: boolean, model: string, pace: (ms?: number) => Promise<void>): Response {
  const id = `msg_${crypto.randomUUID().slice(0, 12)}`
  const toolUses = 'toolCalls' in reply ? reply.toolCalls.map((t) => ({ type: 'tool_use', id: `toolu_${crypto.randomUUID().slice(0, 8)}`, name: t.name, input: t.input })) : null
  const stopReason = toolUses ? 'tool_use' : 'end_turn'
  if (!stream) {
    const content = toolUses ?? [{ type: 'text', text: (reply as { text: string }).text }]
    return Response.json({ id, type: 'message', role: 'assistant', model, content, stop_reason: stopReason, stop_sequence: null, usage: { input_tokens: 11, output_tokens: 7 } })
  }
  const body = new ReadableStream({
    async start(controller) {
      const send = (event: string, data: unknown) => controller.enqueue(new TextEncoder().encode(sse(data, event)))
      send('message_start', { type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 11, output_tokens: 0 } } })
      if (toolUses) {
        toolUses.forEach((t, index) => {
          send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: t.id, name: t.name, input: {} } })
          send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(t.input) } })
          send('content_block_stop', { type: 'content_block_stop', index })
        })
      } else {
        send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })
        for (const piece of words((reply as { text: string }).text)) {
          await pace((reply as { chunkDelayMs?: number }).chunkDelayMs)
          send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } })
        }
        send('content_block_stop', { type: 'content_block_stop', index: 0 })
      }
      send('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 7 } })
      send('message_stop', { type: 'message_stop' })
      controller.close()
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
}

export function startFakeLlm({ port = 0 }: { port?: number } = {}): FakeLlm {
  const fake: Omit<FakeLlm, 'url' | 'port' | 'stop'> = {
    calls: [],
    queue: [],
    fallback: (call) => ({ text: `echo: ${call.lastUser}` }),
    models: [],
    apiKey: null,
  }
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port,
    idleTimeout: 255,
    async fetch(request) {
      const path = new URL(request.url).pathname
      if (request.method === 'GET' && path.endsWith('/models')) {
        const given = request.headers.get('x-api-key') ?? request.headers.get('authorization')?.replace(/^Bearer /, '')
        if (fake.apiKey !== null && given !== fake.apiKey) return Response.json({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } }, { status: 401 })
        const anthropic = request.headers.has('anthropic-version')
        const data = fake.models.map((id) => (anthropic ? { id, type: 'model', display_name: id, created_at: '2025-01-01T00:00:00Z' } : { id, object: 'model', created: 0, owned_by: 'fake' }))
        return Response.json(anthropic ? { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null } : { object: 'list', data })
      }
      const protocol = path.endsWith('/chat/completions') ? 'openai' : path.endsWith('/messages') ? 'anthropic' : null
      if (!protocol || request.method !== 'POST') return Response.json({ error: { message: `no route ${request.method} ${path}` } }, { status: 404 })
      const body = (await request.json()) as any
      const call: RecordedCall = { protocol, stream: !!body.stream, body, lastUser: lastUserText(protocol, body), startedAt: performance.now() }
      fake.calls.push(call)
      const reply = fake.queue.shift() ?? fake.fallback(call)
      if (reply.delayMs) await Bun.sleep(reply.delayMs)
      call.aborted = request.signal.aborted
      const pace = async (ms?: number) => {
        if (ms) await Bun.sleep(ms)
      }
      let response: Response
      if ('status' in reply) {
        response = new Response(reply.body ?? JSON.stringify({ error: { message: `fake error ${reply.status}`, type: 'server_error' } }), {
          status: reply.status,
          headers: { 'content-type': 'application/json' },
        })
      } else if ('malformed' in reply) {
        response = new Response('{"id": "x", "choices": [ this is not json', { headers: { 'content-type': 'application/json' } })
      } else {
        const model = String(body.model ?? 'fake')
        response = protocol === 'openai' ? openAiResponse(reply, call.stream, model, pace) : anthropicResponse(reply, call.stream, model, pace)
      }
      if (!response.body || !call.stream) call.finishedAt = performance.now()
      else {
        // Record when the last byte went out, so tests can check that calls of one session never overlap.
        const reader = response.body.getReader()
        const tracked = new ReadableStream({
          async pull(controller) {
            const { done, value } = await reader.read()
            if (done) {
              call.finishedAt = performance.now()
              controller.close()
            } else controller.enqueue(value)
          },
        })
        response = new Response(tracked, { status: response.status, headers: response.headers })
      }
      return response
    },
  })
  return Object.assign(fake, { url: `http://127.0.0.1:${server.port}`, port: server.port!, stop: () => void server.stop(true) })
}

if (import.meta.main) {
  const index = process.argv.indexOf('--port')
  const fake = startFakeLlm({ port: index > 0 ? Number(process.argv[index + 1]) : 18080 })
  console.log(`fake LLM listening on ${fake.url} (OpenAI: ${fake.url}/v1/chat/completions, Anthropic: ${fake.url}/v1/messages); it echoes your messages`)
}
