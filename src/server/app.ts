import type { Server } from 'bun'
import { LogLevels } from 'consola/core'
import { Elysia } from 'elysia'
import { AppError } from '../errors'
import { HTTP_TAG } from '../logging/logger'
import { agentRoutes } from './agent-routes'
import { authModeFor, authorize, AuthFailureLimiter } from './auth'
import { parseJsonBody } from './body'
import { controlRoutes } from './control'
import { corsHeaders, preflightHeaders } from './cors'
import { configRoutes } from './config-routes'
import { cronRoutes } from './cron-routes'
import { errorEnvelope, errorHandler } from './errors'
import { healthRoutes } from './health'
import { logRoutes } from './logs-routes'
import { metricsRoutes } from './metrics-routes'
import { openAiRoutes } from './openai-routes'
import { pairingRoutes } from './pairing-routes'
import { openApiDocument } from './openapi'
import type { AppDeps } from './deps'
import { InFlight } from './in-flight'
import { headAsGet, methodTable, type MethodsOf } from './methods'
import { pathOf, refusalError, refusalOf } from './request-gate'
import { recordRequest, requestIdFor } from './request-id'
import { messageRoutes } from './message-routes'
import { sessionRoutes } from './session-routes'
import { statusRoutes } from './status'
import { UiAssets, uiRoutes } from './ui'
import { usageRoutes } from './usage-routes'
import { webhookRoutes } from './webhook-routes'

/**
 * The whole HTTP application, built from its dependencies and never listening itself: the gateway's server
 * calls `handle(request, server)`, tests call `handle(request)`.
 *
 * Two layers. The front door (`handle`) is the one place every request passes: the request gate, the request
 * id, CORS, draining, the in-flight count, auth and the request log line, in plain code that costs a few
 * hundred nanoseconds. Behind it the Elysia app routes, parses and validates, and turns every error into the
 * envelope. (The front door used to be Elysia's global onRequest/onAfterResponse hooks: those cost more than
 * the whole route — a closure, an async task and a setImmediate per request — and halved /health throughput.)
 */
export function createApp(deps: AppDeps) {
  const httpLog = deps.log.withTag(HTTP_TAG)
  const redact = deps.redact ?? ((text: string) => text)
  const corsOrigins = new Set(deps.corsOrigins)
  const limiter = deps.authLimiter ?? new AuthFailureLimiter()
  const inFlight = deps.inFlight ?? new InFlight()
  let server: Server<unknown> | null = null
  const peerAddress = deps.peerAddress ?? ((request: Request) => server?.requestIP(request)?.address ?? null)
  const authOptions = { token: deps.token, limiter, peerAddress }

  let document: unknown = null
  // Which methods each path takes, for 405 answers: filled in once the routes are known, below.
  let methodsOf: MethodsOf = () => null
  // Routing and auth must read one and the same path, the one in `request.url`:
  // - Elysia's default assumes every host is at least 4 characters long ("http://a.bc") and reads the path from
  //   index 11 of the URL: with `Host: a`, "/health/api/logs" would be routed as "/api/logs";
  // - Bun's own router (Elysia's "system router") matches the raw request target, while `request.url` has its
  //   dot segments and backslashes resolved: "/api/sessions/..\..\health" was routed to the sessions handler
  //   while auth saw "/health".
  const routes = new Elysia({ systemRouter: false, handler: { standardHostname: false } })
    .use(errorHandler(deps.log, deps.redact, (path) => methodsOf(path)))
    .onParse({ as: 'global' }, function parseJson({ request, contentType }) {
      return parseJsonBody(request, contentType, deps.maxBodyBytes)
    })
    .use(healthRoutes(deps))
    .use(statusRoutes(deps))
    .use(deps.agent ? agentRoutes(deps.agent, deps.log, deps.redact) : new Elysia({ name: 'agent-off' }))
    .use(deps.agent ? openAiRoutes(deps.agent, deps.log, deps.redact) : new Elysia({ name: 'openai-off' }))
    .use(deps.sessions ? sessionRoutes(deps.sessions) : new Elysia({ name: 'sessions-off' }))
    .use(deps.sessions ? usageRoutes({ usage: deps.sessions.usage, pricing: deps.pricing ?? {}, now: deps.now }) : new Elysia({ name: 'usage-off' }))
    .use(
      deps.senders && deps.queue
        ? messageRoutes({ senders: deps.senders, queue: deps.queue, defaultSyncTimeoutMs: deps.syncTimeoutMs ?? 150_000 })
        : new Elysia({ name: 'messages-off' }),
    )
    .use(deps.channels ? webhookRoutes({ channels: deps.channels }) : new Elysia({ name: 'webhooks-off' }))
    .use(deps.cron ? cronRoutes(deps.cron) : new Elysia({ name: 'cron-off' }))
    .use(deps.pairing ? pairingRoutes({ store: deps.pairing, senders: deps.senders, log: deps.log }) : new Elysia({ name: 'pairing-off' }))
    .use(deps.logFile ? logRoutes({ logFile: deps.logFile, flush: deps.flushLogs ?? (() => {}), ...(deps.logTap ? { tap: deps.logTap } : {}) }) : new Elysia({ name: 'logs-off' }))
    .use(deps.control ? controlRoutes(deps.control, peerAddress) : new Elysia({ name: 'control-off' }))
    .use(deps.reloadConfig ? configRoutes(deps.reloadConfig) : new Elysia({ name: 'config-off' }))
    .use(deps.metrics ? metricsRoutes(deps.metrics, deps) : new Elysia({ name: 'metrics-off' }))
    // Typed as a plugin without routes: a test's routes are no part of the API, and `any` would erase the app's route types.
    .use(deps.testPlugin ? (deps.testPlugin() as Elysia) : new Elysia({ name: 'test-plugin-off' }))
    .use(uiRoutes(deps.ui ?? new UiAssets()))
    // Built on first use from the routes themselves, so it always lists exactly what is served.
    .get('/openapi.json', function openApi() {
      document ??= openApiDocument(routes.routes, deps.version)
      return document
    })
  const route = routes.fetch
  methodsOf = methodTable(routes.routes)
  // Requests are counted by route template, matched from the path once and remembered (src/metrics/recorder.ts).
  const http = deps.metrics?.http
  http?.useRoutes(() => routes.routes.map((r) => r.path))

  const logLine = (request: Request, path: string, id: string, status: number, start: number) => {
    // Health probes (supervisors, `status`, load balancers) would drown the log: they are debug lines.
    const probe = status === 200 && path === '/health'
    // Read per probe: a reload may change the level.
    if (probe && httpLog.level < LogLevels.debug) return
    // The request was answered: a failing log must not turn its answer into a bare 500.
    try {
      ;(probe ? httpLog.debug : httpLog.info)(`${request.method} ${path} ${status}`, {
        requestId: id,
        method: request.method,
        path,
        status,
        ms: Math.round((performance.now() - start) * 100) / 100,
      })
    } catch {}
  }

  async function handle(request: Request): Promise<Response> {
    const start = performance.now()
    const id = requestIdFor(request)
    const path = pathOf(request.url)
    recordRequest(request, { id, path, start })
    let cors: Record<string, string> | null = null
    let admitted = false
    let response: Response
    try {
      // The request gate (SPEC §7): before CORS, draining, the in-flight count and auth.
      const refusal = refusalOf(request)
      if (refusal !== null) throw refusalError(refusal)
      if (corsOrigins.size > 0) {
        const origin = request.headers.get('origin')
        cors = corsHeaders(origin, corsOrigins)
        if (cors && request.method === 'OPTIONS' && request.headers.has('access-control-request-method')) {
          response = new Response(null, { status: 204, headers: { ...preflightHeaders(origin!), 'x-request-id': id } })
          logLine(request, path, id, 204, start)
          http?.observe(path, request.method, 204, performance.now() - start)
          return response
        }
      }
      if (deps.isDraining() && path !== '/health') throw new AppError('UNAVAILABLE', 'the gateway is shutting down; retry in a moment')
      inFlight.admit()
      admitted = true
      const mode = authModeFor(path)
      if (mode !== 'none') authorize(request, mode, authOptions)
      response = await route(request.method === 'HEAD' ? headAsGet(request) : request)
    } catch (error) {
      // Thrown by the front door itself (the routes answer their own errors with the envelope).
      const envelope = errorEnvelope('FRONT_DOOR', error, request, httpLog, redact)
      response = Response.json(envelope.body, { status: envelope.status, headers: envelope.headers })
    } finally {
      if (admitted) inFlight.finish()
    }
    const headers = response.headers
    headers.set('x-request-id', id)
    if (cors) for (const name in cors) headers.set(name, cors[name]!)
    logLine(request, path, id, response.status, start)
    http?.observe(path, request.method, response.status, performance.now() - start)
    return response
  }

  return {
    /** Answers one request; `server` is the listening Bun server (for the peer address), absent in tests. */
    handle(request: Request, listening?: Server<unknown>): Promise<Response> {
      if (listening) server = listening
      return handle(request)
    },
    /** Every route the app serves (the OpenAPI document and the security suite enumerate them). */
    get routes() {
      return routes.routes
    },
    /** A reloaded `gateway.cors.origins`: the next request is answered with them. */
    setCorsOrigins(origins: readonly string[]) {
      corsOrigins.clear()
      for (const origin of origins) corsOrigins.add(origin)
    },
    /** Compiles the routes ahead of the first request. */
    compile() {
      routes.compile()
    },
  }
}

export type App = ReturnType<typeof createApp>
export type { AppDeps } from './deps'
