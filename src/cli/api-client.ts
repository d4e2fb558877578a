import { CliError, ExitCode } from '../errors'
import { effectiveToken, findGateway } from '../lifecycle/control'
import { unverifiedLockMessage } from '../lifecycle/lock'
import { localUrl } from '../net/url'

/** Talks to the running gateway of a config, with its URL and token from the lock and the config. */
export function apiClient(configFlag: string | undefined) {
  const target = findGateway(configFlag)
  if (target.state.state === 'unverified') throw new CliError(unverifiedLockMessage(target.lockPath, target.state.info))
  if (target.state.state !== 'running') throw new CliError('Gateway is not running. Start it with: xopcbot gateway', ExitCode.NOT_RUNNING)
  const info = target.state.info
  const url = localUrl(info)
  const token = effectiveToken(target.paths, info)
  return async function call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response
    try {
      response = await fetch(`${url}${path}`, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      })
    } catch (error) {
      throw new CliError(`Cannot reach the gateway at ${url}: ${(error as Error).message}`)
    }
    const data = (await response.json().catch(() => null)) as any
    if (!response.ok) throw new CliError(data?.error?.message ? `${data.error.message} (${data.error.code})` : `The gateway answered HTTP ${response.status}`)
    return data as T
  }
}
