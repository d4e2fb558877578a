import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Config } from './schema'

/**
 * Live reload (SIGHUP, a change of the file, POST /api/config/reload): which parts of the config changed, which of
 * them the running gateway applies, and which wait for a restart. The gateway (lifecycle/gateway.ts) does the
 * applying; this module only decides.
 */

/** What one reload did, as POST /api/config/reload answers it. */
export interface ReloadResult {
  applied: string[]
  restart_required: string[]
  /** nothing differed from the config in use */
  unchanged: boolean
}

/** The config's state in /api/status: `invalid` from a reload that found the file invalid until one finds it valid. */
export interface ConfigReport {
  state: 'ok' | 'invalid'
  path: string
  /** when the config in use was loaded (the start, or the last valid reload) */
  loaded_at: string
  /** with `invalid`: the problems, `<dotted.path>: <message>` */
  error?: string
  /** with `invalid`: since when */
  since?: string
}

/**
 * Keys read once, when the gateway starts (the listening socket, the database, the log file): a change is
 * reported as needing a restart and the running gateway keeps the value it started with.
 */
const RESTART_ONLY = [
  ['gateway', 'host'],
  ['gateway', 'port'],
  ['gateway', 'maxBodyBytes'],
  ['dataDir'],
  ['logging', 'file'],
  ['logging', 'maxFileBytes'],
  ['logging', 'maxFiles'],
] as const

/** The keys of these areas that the gateway applies live; any other key of theirs (one added later too) is start-only. */
const PARTLY_LIVE: Record<string, readonly string[]> = { gateway: ['auth', 'cors', 'shutdownTimeoutMs'], logging: ['level'], cron: ['timezone'] }

/** RESTART_ONLY and every key of a partly live area that is not known to be live, in either config. */
function startOnlyPaths(before: Config, after: Config): (readonly string[])[] {
  const paths: (readonly string[])[] = [...RESTART_ONLY]
  for (const [area, live] of Object.entries(PARTLY_LIVE)) {
    const keys = new Set([...Object.keys((at(before, [area]) as object | undefined) ?? {}), ...Object.keys((at(after, [area]) as object | undefined) ?? {})])
    for (const key of keys) if (!live.includes(key) && !paths.some((path) => path[0] === area && path[1] === key)) paths.push([area, key])
  }
  return paths
}

/** Top-level keys the gateway applies live: whole, or in the parts `diffConfig` names. */
const LIVE_AREAS = new Set(['$schema', 'gateway', 'agent', 'providers', 'channels', 'cron', 'logging', 'mcp', 'pricing'])
/** Top-level keys decided here, live or not: any other key (one added later) is compared whole and needs a restart. */
const KNOWN_KEYS = new Set([...LIVE_AREAS, 'dataDir'])

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)
const at = (config: Config, path: readonly string[]): unknown => path.reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], config)

/** The names whose entry differs between two records (added and removed ones included), sorted. */
function changedEntries(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)])
  return [...names].filter((name) => !same(Object.hasOwn(before, name) ? before[name] : null, Object.hasOwn(after, name) ? after[name] : null)).sort()
}

export interface ConfigDiff extends ReloadResult {
  /** channels added, removed or changed: each restarted on its own */
  channels: string[]
  /** MCP servers added, removed or changed: each restarted on its own */
  mcpServers: string[]
  /** what the agent is built from changed (model, providers, tools, limits, channel tool lists, time zone) */
  agent: boolean
}

/** What differs between the config in use and the one just loaded, and what of it can be applied live. */
export function diffConfig(before: Config, after: Config): ConfigDiff {
  const applied: string[] = []
  const restart: string[] = []
  for (const path of startOnlyPaths(before, after)) if (!same(at(before, path), at(after, path))) restart.push(path.join('.'))
  const live = (path: string, a: unknown, b: unknown) => {
    if (!same(a, b)) applied.push(path)
  }
  live('logging.level', before.logging.level, after.logging.level)
  live('gateway.auth.token', before.gateway.auth.token, after.gateway.auth.token)
  live('gateway.cors.origins', before.gateway.cors.origins, after.gateway.cors.origins)
  live('gateway.shutdownTimeoutMs', before.gateway.shutdownTimeoutMs, after.gateway.shutdownTimeoutMs)
  live('agent', before.agent, after.agent)
  live('providers', before.providers, after.providers)
  live('cron.timezone', before.cron.timezone, after.cron.timezone)
  live('pricing', before.pricing, after.pricing)
  const channels = changedEntries(before.channels, after.channels)
  const mcpServers = changedEntries(before.mcp.servers, after.mcp.servers)
  applied.push(...channels.map((name) => `channels.${name}`), ...mcpServers.map((name) => `mcp.servers.${name}`))
  // Keys of other parts of the program (and any added later) are read at start unless they are taught here.
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  for (const key of [...keys].sort()) {
    if (!KNOWN_KEYS.has(key) && !same((before as Record<string, unknown>)[key], (after as Record<string, unknown>)[key])) restart.push(key)
  }
  const agent = applied.some((path) => path === 'agent' || path === 'providers' || path === 'cron.timezone' || path.startsWith('channels.') || path.startsWith('mcp.servers.'))
  return { applied, restart_required: restart, unchanged: applied.length === 0 && restart.length === 0, channels, mcpServers, agent }
}

/**
 * The config the gateway runs with after a reload: the new one, except where a key needs a restart — there the
 * running value stays, so that /api/status, the stop and the next reload see what is in force.
 */
export function configInForce(before: Config, after: Config): Config {
  const out = structuredClone(after) as Record<string, unknown>
  for (const path of startOnlyPaths(before, after)) {
    let to = out
    for (const key of path.slice(0, -1)) to = to[key] as Record<string, unknown>
    const running = at(before, path)
    if (running === undefined) delete to[path.at(-1)!]
    else to[path.at(-1)!] = running
  }
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  for (const key of keys) {
    if (KNOWN_KEYS.has(key)) continue
    if (Object.hasOwn(before, key)) out[key] = (before as Record<string, unknown>)[key]
    else delete out[key]
  }
  return out as Config
}

/** The SHA-256 of a config file's text (null: there is no file), to tell a real change from a touch. */
export function contentHash(text: string | null): string {
  return text === null ? 'none' : createHash('sha256').update(text).digest('hex')
}

export interface ConfigWatch {
  close(): void
}

/**
 * Calls `onChange` once the config file has been quiet for `debounceMs` after a change. The directory is watched,
 * not the file: an editor or `config set` that writes a new file and renames it over the old one replaces the
 * file a file watch would be following. Throws when the directory cannot be watched.
 */
export function watchConfigFile(path: string, onChange: () => void, { debounceMs = 300, onError = () => {} }: { debounceMs?: number; onError?: (error: Error) => void } = {}): ConfigWatch {
  const name = basename(path)
  let timer: ReturnType<typeof setTimeout> | null = null
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
    // Some platforms give no name: any change in the directory might be ours.
    if (filename !== null && filename !== undefined && String(filename) !== name) return
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = null
      onChange()
    }, debounceMs)
  })
  // The watch has ended (its directory was removed, …): say so once; SIGHUP and the endpoint still reload.
  watcher.on('error', (error) => onError(error))
  return {
    close() {
      if (timer) clearTimeout(timer)
      timer = null
      watcher.close()
    },
  }
}
