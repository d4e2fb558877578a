import { readableByOthers, readTokenFile, type GatewayFlags } from '../../config/settings'
import type { StartedGateway } from '../../lifecycle/run'
import { displayUrl, maskToken } from '../output'

/** Warnings about how the token was passed: on the command line anyone on the machine can read it (ps). */
function tokenWarnings(flags: GatewayFlags): string[] {
  if (flags.token !== undefined) {
    return ['⚠️ The token was given with --token: other users of this machine can see it in the process list (ps). Pass it with --token-file PATH or XOPCBOT_GATEWAY_TOKEN instead.']
  }
  if (flags.tokenFile !== undefined) {
    try {
      if (readableByOthers(readTokenFile(flags.tokenFile).mode)) {
        return [`⚠️ The token file ${flags.tokenFile} can be read by other users; make it private: chmod 600 ${flags.tokenFile}`]
      }
    } catch {
      // The gateway read it at start; a file gone since then is no reason to fail while printing the banner.
    }
  }
  return []
}

/** What `xopcbot gateway` prints once the gateway serves. */
export function startBanner(started: StartedGateway, flags: GatewayFlags): string[] {
  const { host, port, token } = started
  return [
    '✅ Gateway is running',
    `Host: ${host}`,
    `Port: ${port}`,
    '🌐 Access:',
    `URL: ${displayUrl(host, port)}`,
    `Token: ${token ? maskToken(token) : '(none: only requests from this machine are accepted)'}`,
    `Config: ${started.configPath}${started.configExists ? '' : ' (not found: using defaults)'}`,
    ...tokenWarnings(flags),
    'Press Ctrl+C to stop',
  ]
}
