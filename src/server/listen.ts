import type { Server } from 'bun'
import { isIP } from 'node:net'
import { CliError } from '../errors'
import type { App } from './app'

export interface ListenOptions {
  host: string
  port: number
  maxBodyBytes: number
  /** seconds a connection may stay silent; Bun allows at most 255 */
  idleTimeoutSeconds: number
}

export class PortInUseError extends CliError {
  override readonly name = 'PortInUseError'
  constructor(readonly port: number) {
    super(`Port ${port} is already in use. Use --force to kill existing process.`)
  }
}

/**
 * Binds the app with Bun's own server. `reusePort` is off, so a taken port fails here instead of two
 * gateways silently sharing it. Bun's own body limit sits well above ours: our parser answers oversized
 * bodies with the JSON error envelope, which Bun's bare 413 would not.
 */
export function listen(app: App, options: ListenOptions): Server<unknown> {
  app.compile()
  try {
    return Bun.serve({
      hostname: options.host,
      port: options.port,
      reusePort: false,
      development: false,
      idleTimeout: Math.min(255, Math.max(10, Math.ceil(options.idleTimeoutSeconds))),
      maxRequestBodySize: Math.max(options.maxBodyBytes * 4, 16 * 1024 * 1024),
      fetch: (request, server) => app.handle(request, server),
    })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new PortInUseError(options.port)
    if (code === 'EACCES') throw new CliError(`Permission denied to listen on port ${options.port}; choose a port above 1023 (--port).`)
    if (code === 'EADDRNOTAVAIL') throw new CliError(`Address ${options.host} is not available on this machine; check gateway.host or --host.`)
    // The host is a well-formed name (the config and flags are validated) that the resolver could not turn into
    // an address; Bun reports that as ENOENT or ENOTCONN from listen, which alone says nothing to the user.
    if (!isIP(options.host.replace(/^\[(.*)\]$/, '$1')) && (code === 'ENOENT' || code === 'ENOTCONN' || code === 'ENOTFOUND' || code?.startsWith('EAI_'))) {
      throw new CliError(`Cannot listen on ${options.host}: the host name does not resolve to an address of this machine (${code}); check gateway.host, XOPCBOT_GATEWAY_HOST or --host.`)
    }
    throw error
  }
}

