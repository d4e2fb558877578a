import { constants, Database } from 'bun:sqlite'
import { existsSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { pathToFileURL } from 'node:url'
import { databasePathOf, dataDirOf } from '../../config/paths'
import { applyGatewayOverrides } from '../../config/settings'
import { ConfigError } from '../../errors'
import { healthOf } from '../../lifecycle/control'
import { otherProgramMessage, unverifiedLockMessage, type LockInfo, type LockState } from '../../lifecycle/lock'
import { describeProcess, findListeners } from '../../lifecycle/ports'
import { displayUrl } from '../../net/url'
import { moveAsideCommand } from '../../storage/db'
import { migrations } from '../../storage/migrations'
import { cliCommand, fail, ok, octal, shellWord, skip, warn, type Check, type DoctorContext } from './check'
import type { ConfigView } from './config'
import { formatBytes } from '../../util/bytes'

/** SQLite's primary result codes that say something about the file (the low byte of an extended code). */
const SQLITE = { BUSY: 5, LOCKED: 6, CORRUPT: 11, CANTOPEN: 14, NOTADB: 26 } as const

const sizeOf = (path: string) => {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

/**
 * Opens the database without changing anything, also while a gateway writes it. With a `-wal` file (a gateway
 * has it open, or crashed) a read-only connection shares its WAL index; without one nobody has it open, and
 * `immutable` reads the file without creating the `-wal` and `-shm` files a read-only WAL connection would leave.
 */
function openReadOnly(path: string): Database {
  if (existsSync(`${path}-wal`)) return new Database(path, { readonly: true })
  return new Database(`${pathToFileURL(path).href}?immutable=1`, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI)
}

/** The database: SQLite's quick_check, its schema version, its size and mode. */
export function checkDatabase(ctx: DoctorContext, view: ConfigView): Check {
  if (view.unreadable.has('dataDir')) return skip('database', 'dataDir cannot be read from the config (see config)')
  const path = databasePathOf(dataDirOf(view.config, view.paths.configPath, ctx.env.HOME))
  let stat
  try {
    stat = statSync(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return warn('database', `${path} does not exist yet: the gateway creates it at its first start`, `run: ${cliCommand(view.paths, 'gateway')}`)
    return fail('database', `cannot stat ${path} (${code ?? (error as Error).message})`, `check that this user can read ${path}`)
  }
  const moveAside = `restore it from a backup, or run: ${moveAsideCommand(path, ctx.platform)}`
  if (!stat.isFile()) return fail('database', `${path} is not a regular file`, moveAside)
  let db: Database | null = null
  try {
    db = openReadOnly(path)
    const problems = (db.query('PRAGMA quick_check').values() as unknown[][]).map((row) => String(row[0])).filter((line) => line !== 'ok')
    if (problems.length) return fail('database', `${path} is damaged (integrity check: ${problems[0]}${problems.length > 1 ? `, and ${problems.length - 1} more problems` : ''})`, moveAside)
    const version = (db.query('PRAGMA user_version').get() as { user_version: number }).user_version
    if (version > migrations.length) {
      return fail('database', `${path} was written by a newer xopcbot (schema ${version}, this version knows ${migrations.length})`, 'upgrade xopcbot, or restore a backup made by this version')
    }
  } catch (error) {
    const errno = (error as { errno?: unknown }).errno
    const code = error instanceof Error && error.name === 'SQLiteError' && typeof errno === 'number' ? errno & 0xff : null
    const message = (error as Error).message
    if (code === SQLITE.NOTADB) return fail('database', `${path} is not an SQLite database`, moveAside)
    if (code === SQLITE.CORRUPT) return fail('database', `${path} is damaged (${message})`, moveAside)
    if (code === SQLITE.BUSY || code === SQLITE.LOCKED) return warn('database', `${path} is locked by another process right now (${message})`, 'run xopcbot doctor again in a moment')
    return fail('database', `cannot open ${path} (${message})`, `check that this user can read ${path} and its directory`)
  } finally {
    db?.close()
  }
  const size = formatBytes(stat.size + sizeOf(`${path}-wal`))
  if (ctx.platform !== 'win32' && stat.mode & 0o077) {
    return warn('database', `${path} passes its integrity check (${size}), but has mode ${octal(stat.mode)}: other users can read it`, `run: chmod 600 ${shellWord(path)}`)
  }
  return ok('database', `${path} passes its integrity check (${size})`)
}

/** The lock of this config: none, held by the running gateway, or left behind. */
export function checkLock(lockPath: string, state: LockState): Check {
  switch (state.state) {
    case 'none':
      return ok('lock', 'no lock: no gateway runs on this config')
    case 'running':
      return ok('lock', `held by the running gateway (pid ${state.info.pid}, since ${state.info.createdAt})`)
    case 'stale':
      if (!state.info) return warn('lock', `${lockPath} cannot be read: the next start replaces it`, `run: rm ${shellWord(lockPath)}`)
      if (state.other) return warn('lock', `stale: ${otherProgramMessage(state.info, state.other)} The next start removes it`, `run: rm ${shellWord(lockPath)}`)
      return warn('lock', `stale: pid ${state.info.pid} is gone; the next start removes it`, `run: rm ${shellWord(lockPath)}`)
    case 'unverified':
      return fail('lock', unverifiedLockMessage(lockPath, state.info), `if no gateway runs with this config, run: rm ${lockPath}`)
  }
}

/** Why nothing can listen on host:port (the errno code), or null when it can. */
function bindProblem(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)))
  })
}

/** The port: held by this config's running gateway (which answers /health), or free for it to start. */
export async function checkPort(ctx: DoctorContext, view: ConfigView, running: LockInfo | null): Promise<Check> {
  if (running) {
    const health = await healthOf(running)
    const where = displayUrl(running.host, running.port)
    if (health.state === 'healthy') return ok('port', `${running.port} is held by our gateway (pid ${running.pid}), which answers on ${where}/health`)
    if (health.state === 'draining') return warn('port', `${running.port} is held by our gateway (pid ${running.pid}), which is stopping`, `run: ${cliCommand(view.paths, 'gateway status')} (again in a moment)`)
    return fail('port', `our gateway (pid ${running.pid}) holds the lock but does not answer on ${where}/health`, `run: ${cliCommand(view.paths, 'gateway restart')}`)
  }
  if (view.unreadable.has('gateway')) return skip('port', 'gateway.* cannot be read from the config (see config)')
  let host: string
  let port: number
  try {
    ;({ host, port } = applyGatewayOverrides(view.config, ctx.env).gateway)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    return fail('port', error.message, 'correct or unset the XOPCBOT_GATEWAY_* variables named above')
  }
  const problem = await bindProblem(host, port)
  const config = view.paths.configPath
  if (problem === null) return ok('port', `${port} on ${host} is free for the gateway`)
  if (problem === 'EADDRINUSE') {
    const holders = findListeners(port, ctx.platform).map((pid) => `pid ${pid}: ${describeProcess(pid)}`)
    return fail(
      'port',
      `${port} is in use (${holders.length ? holders.join('; ') : 'by another process'}): the gateway cannot start on it`,
      `stop that process, or set gateway.port in ${config} to a free port`,
    )
  }
  if (problem === 'EACCES') return fail('port', `${port} needs privileges this user does not have`, `set gateway.port in ${config} to 1024 or above`)
  if (problem === 'EADDRNOTAVAIL') return fail('port', `${host} is not an address of this machine`, `set gateway.host in ${config} to 127.0.0.1 or 0.0.0.0`)
  return fail('port', `cannot listen on ${host}:${port} (${problem})`, `check gateway.host and gateway.port in ${config}`)
}
