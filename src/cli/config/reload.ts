import { effectiveToken, type Target } from '../../lifecycle/control'
import { unverifiedLockMessage, type LockInfo } from '../../lifecycle/lock'
import { localUrl } from '../../net/url'

/** The running gateway of a config, and the token it accepts now — read before the file changes, which may change it. */
export interface Listener {
  info: LockInfo
  token: string | null
}

/**
 * The verified gateway that runs on the config, if any; 'unverified' when a lock names a process that cannot be
 * verified as one: such a process is not told anything.
 */
export function listenerOf(target: Target): Listener | 'unverified' | null {
  if (target.state.state === 'unverified') {
    console.error(`⚠️ ${unverifiedLockMessage(target.lockPath, target.state.info)}`)
    return 'unverified'
  }
  if (target.state.state !== 'running') return null
  let token: string | null = null
  try {
    token = effectiveToken(target.paths, target.state.info)
  } catch {
    // gateway.auth uses a variable this shell lacks: ask without a token; a 401 then says what to do.
  }
  return { info: target.state.info, token }
}

interface ReloadReply {
  applied?: string[]
  restart_required?: string[]
  unchanged?: boolean
}

/** What the change means to a gateway, worked out here (diffConfig) when both versions of the file are valid in this shell. */
export type LocalDiff = Pick<ReloadReply, 'applied'> | null

/**
 * Asks the running gateway to read its config file again (POST /api/config/reload) and prints what it applied
 * and what needs a restart. With no gateway running the change simply applies at the next start. Returns false
 * when the running gateway could not take the change (the file is written either way).
 */
export async function applyToGateway(listener: Listener | 'unverified' | null, local: LocalDiff): Promise<boolean> {
  if (!listener) {
    console.log('The gateway is not running; the change applies when it starts.')
    return true
  }
  if (listener === 'unverified') {
    console.log('The running gateway was not told: if one runs on this config, restart it to apply the change (xopcbot gateway restart).')
    return true
  }
  const { info, token } = listener
  const restart = `restart the gateway to apply it: xopcbot gateway restart`
  let response: Response
  try {
    response = await fetch(`${localUrl(info)}/api/config/reload`, {
      method: 'POST',
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(30_000),
    })
  } catch (error) {
    console.error(`⚠️ Could not reach the running gateway (pid ${info.pid}) at ${localUrl(info)} (${(error as Error).message}); ${restart}`)
    return false
  }
  const body = (await response.json().catch(() => null)) as (ReloadReply & { error?: { code?: string; message?: string } }) | null
  if (response.status === 404) {
    // A gateway of a version without live reload.
    console.log(`The running gateway (pid ${info.pid}) cannot reload its config; ${restart}`)
    return true
  }
  if (response.status === 422) {
    console.error(`⚠️ The running gateway (pid ${info.pid}) refused the file and keeps its previous config: ${body?.error?.message ?? 'invalid config'}`)
    return false
  }
  if (!response.ok || !body) {
    const why = body?.error?.message ? `${body.error.message} (${body.error.code})` : `HTTP ${response.status}`
    console.error(`⚠️ The running gateway (pid ${info.pid}) did not reload: ${why}; ${restart}`)
    return false
  }
  // The gateway also reloads by itself when the file changes (after a short quiet time). When it got there first,
  // our reload applies nothing new: what it applied is then what the change itself differs in. (What needs a
  // restart it still reports, this change's and earlier ones' alike — it keeps their old values in force — so
  // `unchanged` is false while any restart is pending: only an empty `applied` tells.)
  const applied = (body.applied?.length ? body.applied : local?.applied) ?? []
  const restartRequired = body.restart_required ?? []
  if (!applied.length && !restartRequired.length) console.log(`The running gateway (pid ${info.pid}) reloaded the file: nothing it uses changed.`)
  if (applied.length) console.log(`Applied by the running gateway (pid ${info.pid}): ${applied.join(', ')}`)
  if (restartRequired.length) console.log(`Needs a restart to apply: ${restartRequired.join(', ')} (xopcbot gateway restart)`)
  return true
}
