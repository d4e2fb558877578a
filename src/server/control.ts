import { Elysia } from 'elysia'
import { AppError } from '../errors'
import { isLoopbackAddress, tokensMatch } from './auth'
import { NONCE_HEADER } from '../net/control'

/** What the local CLI may ask the running gateway to do (used where signals are missing, e.g. Windows). */
export interface GatewayControl {
  /** the lock's per-run nonce: only someone who can read the lock file (the same user) knows it */
  nonce: () => string
  stop: () => void
  restart: () => void
  /** re-reads the token from the config and applies it */
  reloadToken: () => void
}


/**
 * POST /_control/{stop,restart,reload-token}: loopback only, authenticated by the lock's nonce. Not part
 * of the public API; `xopcbot gateway token --rotate` (everywhere) and `stop`/`restart` (on Windows) use it
 * through its client, sendControl in lifecycle/control.ts.
 */
export function controlRoutes(control: GatewayControl, peerAddress?: (request: Request) => string | null) {
  const check = (request: Request, address: string | null) => {
    const given = request.headers.get(NONCE_HEADER)
    if (!isLoopbackAddress(address) || !given || !tokensMatch(given, control.nonce())) {
      throw new AppError('UNAUTHORIZED', 'control requests must come from this machine with the nonce of the gateway lock')
    }
  }
  return new Elysia({ name: 'control', prefix: '/_control' }).post(
    '/:action',
    function control_({ params, request, server }) {
      check(request, peerAddress ? peerAddress(request) : (server?.requestIP(request)?.address ?? null))
      const action = params.action
      if (action === 'stop') queueMicrotask(control.stop)
      else if (action === 'restart') queueMicrotask(control.restart)
      else if (action === 'reload-token') control.reloadToken()
      else throw new AppError('NOT_FOUND', `no control action ${JSON.stringify(action)}; use stop, restart or reload-token`)
      return { status: 'ok' }
    },
  )
}
