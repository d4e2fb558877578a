import { LogLevels } from 'consola/core'
import { Elysia } from 'elysia'
import { AppError } from '../errors'
import { HTTP_TAG } from '../logging/logger'
import { agentRoutes } from './agent-routes'
import { authModeFor, authorize, AuthFailureLimiter } from './auth'
import { parseJsonBody } from './body'
import { controlRoutes } from './control'
import { corsHeaders, preflightHeaders } from './cors'
import { cronRoutes } from './cron-routes'
import { errorHandler } from './errors'
import { healthRoutes } from './health'
import { logRoutes } from './logs-routes'
import { openAiRoutes } from './openai-routes'
import { pairingRoutes } from './pairing-routes'
import { openApiDocument } from './openapi'
import type { AppDeps } from './deps'
import { InFlight } from './in-flight'
import { pathOf, refusalError, refusalOf } from './request-gate'
import { factsOf, recordRequest, requestIdFor } from './request-id'
import { messageRoutes } from './message-routes'
import { sessionRoutes } from './session-routes'
import { statusRoutes } from './status'
import { webhookRoutes } from './webhook-routes'

/**
 * The whole HTTP application, built from its dependencies and never listening itself: tests call
 * `app.handle(request)`, the gateway passes it to `listen`.
 */
export function createApp(deps: AppDeps) {
  const httpLog = deps.log.withTag(HTTP_TAG)
  const corsOrigins = new Set(deps.corsOrigins)
  const limiter = deps.authLimiter ?? new AuthFailureLimiter()
  const logProbes = httpLog.level >= LogLevels.debug
  const inFlight = deps.inFlight ?? new InFlight()

  let document: unknown = null
  // Routing and auth must read one and the same path, the one in `request.url`:
  // - Elysia's default assumes every host is at least 4 characters long ("http://a.bc") and reads the path from
  //   index 11 of the URL: with `Host: a`, "/health/api/logs" would be routed as "/api/logs";
  // - Bun's own router (Elysia's "system router") matches the raw request target, while `request.url` has its
  //   dot segments and backslashes resolved: "/api/sessions/..\..\health" was routed to the sessions handler
  //   while auth saw "/health".
  const app = new Elysia({ systemRouter: false, handler: { standardHostname: false } })
    .use(errorHandler(deps.log, deps.redact))
    .onRequest(function prepareRequest({ request, set, server }) {
      const id = requestIdFor(request)
      const path = pathOf(request.url)
      set.headers['x-request-id'] = id
      recordRequest(request, { id, path, start: performance.now() })
      // The request gate (SPEC §7): before CORS, draining, the in-flight count and auth.
      const refusal = refusalOf(request)
      if (refusal !== null) throw refusalError(refusal)
      if (corsOrigins.size > 0) {
        const origin = request.headers.get('origin')
        const cors = corsHeaders(origin, corsOrigins)
        if (cors) {
          if (request.method === 'OPTIONS' && request.headers.has('access-control-request-method')) {
            return new Response(null, { status: 204, headers: { ...preflightHeaders(origin!), 'x-request-id': id } })
          }
          Object.assign(set.headers, cors)
        }
      }
      if (deps.isDraining() && path !== '/health') throw new AppError('UNAVAILABLE', 'the gateway is shutting down; retry in a moment')
      inFlight.admit(request)
      const mode = authModeFor(path)
      if (mode !== 'none') {
        authorize(request, mode, {
          token: deps.token,
          limiter,
          peerAddress: deps.peerAddress ?? ((req) => server?.requestIP(req)?.address ?? null),
        })
      }
    })
    .onParse({ as: 'global' }, function parseJson({ request, contentType }) {
      return parseJsonBody(request, contentType, deps.maxBodyBytes)
    })
    .onAfterResponse({ as: 'global' }, function logRequest({ request, set }) {
      inFlight.finish(request)
      const facts = factsOf(request)
      if (!facts) return
      const status = typeof set.status === 'number' ? set.status : 200
      // Health probes (supervisors, `status`, load balancers) would drown the log: they are debug lines.
      const probe = facts.path === '/health' && status === 200
      if (probe && !logProbes) return
      ;(probe ? httpLog.debug : httpLog.info)(`${request.method} ${facts.path} ${status}`, {
        requestId: facts.id,
        method: request.method,
        path: facts.path,
        status,
        ms: Math.round((performance.now() - facts.start) * 100) / 100,
      })
    })
    .use(healthRoutes(deps))
    .use(statusRoutes(deps))
    .use(deps.agent ? agentRoutes(deps.agent, deps.log, deps.redact) : new Elysia({ name: 'agent-off' }))
    .use(deps.agent ? openAiRoutes(deps.agent, deps.log, deps.redact) : new Elysia({ name: 'openai-off' }))
    .use(deps.sessions ? sessionRoutes(deps.sessions) : new Elysia({ name: 'sessions-off' }))
    .use(
      deps.senders && deps.queue
        ? messageRoutes({ senders: deps.senders, queue: deps.queue, defaultSyncTimeoutMs: deps.syncTimeoutMs ?? 150_000 })
        : new Elysia({ name: 'messages-off' }),
    )
    .use(deps.channels ? webhookRoutes({ channels: deps.channels }) : new Elysia({ name: 'webhooks-off' }))
    .use(deps.cron ? cronRoutes(deps.cron) : new Elysia({ name: 'cron-off' }))
    .use(deps.pairing ? pairingRoutes({ store: deps.pairing, senders: deps.senders, log: deps.log }) : new Elysia({ name: 'pairing-off' }))
    .use(deps.logFile ? logRoutes({ logFile: deps.logFile, flush: deps.flushLogs ?? (() => {}) }) : new Elysia({ name: 'logs-off' }))
    .use(deps.control ? controlRoutes(deps.control, deps.peerAddress) : new Elysia({ name: 'control-off' }))
    // Typed as a plugin without routes: a test's routes are no part of the API, and `any` would erase the app's route types.
    .use(deps.testPlugin ? (deps.testPlugin() as Elysia) : new Elysia({ name: 'test-plugin-off' }))
    // Built on first use from the routes themselves, so it always lists exactly what is served.
    .get('/openapi.json', function openApi() {
      document ??= openApiDocument(app.routes, deps.version)
      return document
    })
  return app
}

export type App = ReturnType<typeof createApp>
export type { AppDeps } from './deps'
