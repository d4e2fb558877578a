import { z } from 'zod'
import { PairingApproval, PairingRequest } from '../channels/pairing'
import { JobInput } from '../cron/service'
import { isUiPath } from './ui-paths'

/**
 * GET /openapi.json: an OpenAPI 3.1 document built from the app's own routes. Request bodies, query strings
 * and path parameters come from the zod schemas that validate them; responses from the schemas below.
 */

const ErrorEnvelope = z.object({ error: z.object({ code: z.string(), message: z.string() }) })
const ok = <T extends z.ZodRawShape>(shape: T) => z.object({ status: z.literal('ok'), ...shape })
const stamp = z.string().describe('ISO-8601 date-time')

const Session = z.object({ key: z.string(), channel: z.string().nullable(), chat_id: z.string().nullable(), message_count: z.int(), created_at: stamp, updated_at: stamp })
const StoredMessage = z.object({
  role: z.enum(['user', 'assistant', 'tool']),
  content: z.string(),
  created_at: stamp,
  input_tokens: z.int().optional(),
  output_tokens: z.int().optional(),
  model: z.string().optional(),
  tool_calls: z.array(z.object({ id: z.string(), name: z.string(), input: z.unknown() })).optional(),
  tool_results: z.array(z.object({ id: z.string(), name: z.string(), output: z.unknown(), error: z.literal(true).optional() })).optional(),
})
const Message = z.object({ id: z.string(), channel: z.string(), chat_id: z.string(), state: z.enum(['queued', 'processing', 'delivered', 'failed']), reply: z.string().optional(), error: z.string().optional(), created_at: stamp, updated_at: stamp })
const Job = JobInput.extend({
  id: z.string(),
  name: z.string(),
  timezone: z.string(),
  enabled: z.boolean(),
  mode: z.enum(['agent', 'direct']),
  channel: z.string().nullable(),
  chat_id: z.string().nullable(),
  session: z.string().nullable(),
  created_at: stamp,
  updated_at: stamp,
  next_run: stamp.nullable(),
  last_run: stamp.nullable(),
  last_status: z.enum(['running', 'ok', 'failed']).nullable(),
})
const Run = z.object({ id: z.string(), job_id: z.string(), trigger: z.enum(['schedule', 'manual', 'catch-up']), status: z.enum(['running', 'ok', 'failed']), started_at: stamp, finished_at: stamp.nullable(), reply: z.string().optional(), error: z.string().optional() })
const UsageRow = z.object({ key: z.string(), input_tokens: z.int(), output_tokens: z.int(), turns: z.int(), cost: z.number().optional().describe('USD, from `pricing`') })
const Health = z.object({ status: z.enum(['healthy', 'draining']), uptime: z.int(), version: z.string() })

interface RouteDoc {
  summary: string
  response: z.ZodType
  status?: number
  /** the route answers text/event-stream when asked to stream */
  sse?: boolean
  /** the response's media type, when it is not JSON */
  contentType?: string
  public?: boolean
}

export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'GET /health': { summary: 'Health: 200 healthy, 503 draining while stopping', response: Health, public: true },
  'GET /openapi.json': { summary: 'This document', response: z.object({ openapi: z.string() }).loose(), public: true },
  'GET /metrics': { summary: 'Prometheus metrics (text exposition format)', response: z.string(), contentType: 'text/plain; version=0.0.4' },
  'GET /api/status': {
    summary: 'Version, process, bind address, model, channels, MCP servers, queue depth, cron',
    response: ok({
      version: z.string(), pid: z.int(), started_at: stamp, uptime: z.int(), config_path: z.string(), data_dir: z.string(), bind: z.object({ host: z.string(), port: z.int() }),
      mcp: z.record(z.string(), z.object({ state: z.enum(['starting', 'running', 'failed', 'disabled']), tools: z.array(z.string()), error: z.string().optional() })),
    }).loose(),
  },
  'POST /api/agent': { summary: 'Talk to the assistant (JSON, or SSE with stream: true); `model` is the model that answered', response: ok({ reply: z.string(), session: z.string(), model: z.string() }), sse: true },
  'GET /api/sessions': { summary: 'Sessions, newest first', response: ok({ sessions: z.array(Session), total: z.int() }) },
  'GET /api/sessions/:key': { summary: 'A session with its messages', response: ok({ session: Session.extend({ messages: z.array(StoredMessage) }) }) },
  'DELETE /api/sessions/:key': { summary: 'Delete a session', response: ok({}) },
  'POST /api/message': { summary: 'Hand a chat message to the assistant; stored before the 202', response: ok({ message_id: z.string() }), status: 202 },
  'POST /api/message/sync': { summary: 'Hand a chat message to the assistant and wait for the delivered reply', response: ok({ reply: z.string(), message_id: z.string() }) },
  'GET /api/message/:id': { summary: 'State of a message', response: ok({ message: Message }) },
  'GET /api/messages': { summary: 'Recent messages, newest first, with their content', response: ok({ messages: z.array(Message.extend({ content: z.string() })) }) },
  'POST /api/send': { summary: 'Deliver text to a chat verbatim', response: ok({ message_id: z.string() }) },
  'POST /api/webhook/:channel': { summary: "Inbound events of a channel (verified by the channel's signature, not the token)", response: ok({ message_id: z.string().optional() }), public: true },
  'GET /api/cron/preview': { summary: 'A schedule in words and its next runs, as a job with it would run', response: ok({ description: z.string(), next_runs: z.array(stamp), timezone: z.string() }) },
  'GET /api/cron': { summary: 'Cron jobs', response: ok({ jobs: z.array(Job) }) },
  'POST /api/cron/create': { summary: 'Create a cron job', response: ok({ job: Job }), status: 201 },
  'POST /api/cron/trigger': { summary: 'Run a job now, in the background', response: ok({ message: z.string(), run_id: z.string() }) },
  'DELETE /api/cron/:id': { summary: 'Delete a job', response: ok({}) },
  'POST /api/cron/:id/toggle': { summary: 'Enable or disable a job', response: ok({ job: Job }) },
  'GET /api/cron/:id/runs': { summary: 'Runs of a job, newest first', response: ok({ runs: z.array(Run) }) },
  'GET /api/pairing': { summary: 'Pending pairing requests (unexpired) and approved chat senders', response: ok({ requests: z.array(PairingRequest), approved: z.array(PairingApproval) }) },
  'POST /api/pairing/approve': { summary: 'Approve the sender of a pairing code; 404 NOT_FOUND for an unknown or expired code', response: ok({ approval: PairingApproval }) },
  'POST /api/pairing/revoke': { summary: 'Take access away from an approved sender (user id or @username)', response: ok({ revoked: z.array(PairingApproval) }) },
  'GET /api/usage': {
    summary: 'Tokens used (and estimated cost) per day, session, model or channel',
    response: ok({ since: stamp, until: stamp, group_by: z.enum(['day', 'session', 'model', 'channel']), rows: z.array(UsageRow), total: UsageRow.omit({ key: true }) }),
  },
  'GET /api/logs': { summary: 'Log lines, newest last (always needs the token)', response: ok({ logs: z.array(z.object({ ts: stamp, level: z.string(), tag: z.string(), msg: z.string() }).loose()) }) },
  'GET /api/logs/stream': {
    summary: 'Live log lines as Server-Sent Events (`log` events, each a log entry; the last `lines` first); always needs the token',
    response: z.object({ ts: stamp, level: z.string(), tag: z.string(), msg: z.string() }).loose(),
    sse: true,
  },
  'POST /api/config/reload': {
    summary: 'Read the config file again and apply what can change live; 422 CONFIG_INVALID (nothing changed) for an invalid file',
    response: ok({ applied: z.array(z.string()), restart_required: z.array(z.string()), unchanged: z.boolean() }),
  },
  'GET /v1/models': { summary: 'OpenAI-compatible model list', response: z.object({ object: z.literal('list'), data: z.array(z.object({ id: z.string(), object: z.literal('model') }).loose()) }) },
  'POST /v1/chat/completions': { summary: 'OpenAI-compatible chat completion (one agent turn; SSE with stream: true)', response: z.object({ id: z.string(), object: z.literal('chat.completion') }).loose(), sse: true },
}

/** `/api/sessions/:key` → `/api/sessions/{key}`; a trailing slash (a plugin's root route) is dropped. */
export const openApiPath = (path: string) => (path.length > 1 ? path.replace(/\/$/, '') : path).replace(/:(\w+)/g, '{$1}')

/** Routes that are not part of the public API (local control, test hooks). */
export const isInternal = (path: string) => path.startsWith('/_')

const jsonSchema = (schema: unknown, io: 'input' | 'output') => z.toJSONSchema(schema as z.ZodType, { io, unrepresentable: 'any' }) as Record<string, unknown>

interface RouteLike {
  method: string
  path: string
  hooks: { body?: unknown; query?: unknown; params?: unknown }
}

export function openApiDocument(routes: readonly RouteLike[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {}
  const errorResponse = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
  for (const route of routes) {
    // The Control UI's page and assets are not part of the API.
    if (isInternal(route.path) || isUiPath(route.path)) continue
    const key = `${route.method} ${route.path}`
    // A plugin's root route ends in "/" (`/api/cron/`); the docs name it without.
    const doc = ROUTE_DOCS[key] ?? ROUTE_DOCS[key.replace(/(.)\/$/, '$1')]
    const path = openApiPath(route.path)
    const parameters: unknown[] = []
    for (const name of route.path.match(/:(\w+)/g) ?? []) {
      const param = name.slice(1)
      const shape = (route.hooks.params as z.ZodObject | undefined)?.shape?.[param]
      parameters.push({ name: param, in: 'path', required: true, schema: shape ? jsonSchema(shape, 'input') : { type: 'string' } })
    }
    const query = route.hooks.query as z.ZodObject | undefined
    for (const [name, schema] of Object.entries(query?.shape ?? {})) {
      parameters.push({ name, in: 'query', required: false, schema: jsonSchema(schema, 'input') })
    }
    const success = doc?.status ?? 200
    const content: Record<string, unknown> = { [doc?.contentType ?? 'application/json']: { schema: doc ? jsonSchema(doc.response, 'output') : {} } }
    if (doc?.sse) content['text/event-stream'] = { schema: { type: 'string', description: 'Server-Sent Events' } }
    paths[path] ??= {}
    paths[path][route.method.toLowerCase()] = {
      summary: doc?.summary ?? key,
      operationId: key.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, ''),
      ...(doc?.public ? { security: [] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(route.hooks.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.hooks.body, 'input') } } } } : {}),
      responses: { [String(success)]: { description: 'Success', content }, '4XX': errorResponse, '5XX': errorResponse },
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'xopcbot gateway', version, description: 'REST API of the xopcbot gateway. Errors are always {"error": {"code", "message"}}.' },
    servers: [{ url: '/' }],
    components: {
      schemas: { Error: jsonSchema(ErrorEnvelope, 'output') },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The API token (gateway.auth.token); optional from localhost when none is configured' } },
    },
    security: [{ bearer: [] }],
    paths,
  }
}
