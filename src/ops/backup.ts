import { Database } from 'bun:sqlite'
import type { Subprocess } from 'bun'
import { Cron } from 'croner'
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir, hostname } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { loadConfig, readConfigText, readRawConfig, substituteEnv } from '../config/load'
import { databasePathOf, dataDirOf, type Env } from '../config/paths'
import { Config } from '../config/schema'
import { CliError, ConfigError, DataError } from '../errors'
import type { Logger } from '../logging/logger'
import { migrations } from '../storage/migrations'
import { ensurePrivateDir } from '../storage/private-files'
import { writeFileAtomic } from '../util/atomic-write'
import { describeIssues } from '../validation'
import { VERSION } from '../version'
import { sha256 } from '../util/hash'
import { archiveEntries, CONFIG_FILE, DATABASE_FILE, fillSecrets, FORMAT, FORMAT_VERSION, verifyBackup, withoutSecrets, type Manifest } from './archive'
import { isRunning } from '../lifecycle/process'

/** The config keys backup and restore read: a `${VAR}` elsewhere need not be set in the shell that runs them. */
export const BACKUP_NEEDS = ['dataDir', 'backup']

/** Where backups go: `backup.dir` (relative to the data directory), else `<dataDir>/backups`. */
export function backupDirOf(config: Config, dataDir: string, homeDir = process.env.HOME || homedir()): string {
  const dir = config.backup.dir
  if (!dir) return join(dataDir, 'backups')
  const expanded = dir === '~' || dir.startsWith('~/') ? join(homeDir, dir.slice(1)) : dir
  return isAbsolute(expanded) ? expanded : resolve(dataDir, expanded)
}

/** `2026-11-30T05:33:45.123Z` → `20261130T053345Z`: sorts as time does, and is a valid file name everywhere. */
const stamp = (at: Date) => at.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')

/** `<dir>/<prefix>-<UTC time>.tar.gz`, with `-2`, `-3`, … when that name is taken. */
export function backupPath(dir: string, prefix: string, at: Date): string {
  const base = join(dir, `${prefix}-${stamp(at)}`)
  for (let n = 1; ; n++) {
    const path = `${base}${n === 1 ? '' : `-${n}`}.tar.gz`
    if (!existsSync(path) && !existsSync(`${path}.partial`)) return path
  }
}

/** `path`, or `path-2`, `path-3`, … : the first that does not exist. */
function freePath(path: string): string {
  for (let n = 1; ; n++) if (!existsSync(n === 1 ? path : `${path}-${n}`)) return n === 1 ? path : `${path}-${n}`
}

export interface BackupResult {
  path: string
  size: number
  ms: number
  manifest: Manifest
}

/**
 * A consistent copy of the live database, taken through a connection of its own: `VACUUM INTO` reads one WAL
 * snapshot (a read transaction, which never blocks the gateway's writers) and writes a compact, standalone
 * database file. The copy — not the live file — is then checked. Returns its schema version.
 */
function snapshotDatabase(dbPath: string, dest: string): number {
  let source: Database | null = null
  try {
    source = new Database(dbPath, { readonly: true, strict: true })
    source.run('PRAGMA busy_timeout = 5000')
    source.query('VACUUM INTO ?').run(dest)
  } catch (error) {
    throw new CliError(`Cannot copy the database ${dbPath} (${(error as Error).message}); check that this user can read it and that the disk has room.`, 1, { cause: error })
  } finally {
    source?.close()
  }
  const copy = new Database(dest, { readonly: true, strict: true })
  try {
    const problems = (copy.query('PRAGMA quick_check').values() as unknown[][]).map((row) => String(row[0])).filter((line) => line !== 'ok')
    if (problems.length) throw new DataError(`The database ${dbPath} is damaged (integrity check: ${problems[0]}), so a backup of it would not restore; see "A damaged database" in the README.`)
    return (copy.query('PRAGMA user_version').get() as { user_version: number }).user_version
  } finally {
    copy.close()
  }
}

/**
 * Writes a backup archive of the database (a consistent snapshot, also while the gateway runs) and the config
 * file: to `out`, or to `<backup dir>/xopcbot-<UTC time>.tar.gz`. Without `includeSecrets` every secret of the
 * config is replaced by a placeholder. Everything is written in `<out>.partial/` and the archive linked into
 * place at the end (never over an existing file), 0600.
 */
export async function createBackup(options: { configPath: string; config: Config; out?: string | undefined; includeSecrets: boolean; prefix?: string; now?: Date }): Promise<BackupResult> {
  const started = performance.now()
  const { configPath, config, includeSecrets } = options
  const now = options.now ?? new Date()
  const dataDir = dataDirOf(config, configPath)
  const dbPath = databasePathOf(dataDir)
  if (!existsSync(dbPath)) throw new CliError(`There is no database at ${dbPath}, so there is nothing to back up (has a gateway run with this config?).`)
  if (options.out && existsSync(options.out)) throw new CliError(`${options.out} already exists; give another --out or remove it first.`)
  const path = options.out ?? backupPath(backupDirOf(config, dataDir), options.prefix ?? 'xopcbot', now)
  ensurePrivateDir(dirname(path))
  const staging = `${path}.partial`
  // Never emptied first: with --out it is a path the user did not name, and may be a folder of their own.
  try {
    mkdirSync(staging, { mode: 0o700 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${staging} already exists (left by an interrupted backup?); remove it, or give another --out.`)
    throw error
  }
  try {
    const snapshot = join(staging, DATABASE_FILE)
    const schemaVersion = snapshotDatabase(dbPath, snapshot)
    // In memory: Bun.Archive takes bytes (a lazy file would be archived empty). The database is the bulk of it.
    const files: Record<string, Uint8Array> = { [DATABASE_FILE]: readFileSync(snapshot) }
    rmSync(snapshot)
    let removed: string[] = []
    const configText = readConfigText(configPath)
    if (configText !== null) {
      if (includeSecrets) files[CONFIG_FILE] = new TextEncoder().encode(configText)
      else {
        const scrubbed = withoutSecrets(readRawConfig(configPath) ?? {})
        removed = scrubbed.removed
        files[CONFIG_FILE] = new TextEncoder().encode(JSON.stringify(scrubbed.config, null, 2) + '\n')
      }
    }
    const manifest: Manifest = {
      format: FORMAT,
      format_version: FORMAT_VERSION,
      xopcbot_version: VERSION,
      created_at: now.toISOString(),
      hostname: hostname(),
      secrets_included: includeSecrets,
      secrets_removed: removed,
      schema_version: schemaVersion,
      files: Object.entries(files).map(([name, data]) => ({ name: name as Manifest['files'][number]['name'], size: data.length, sha256: sha256(data) })),
    }
    const temp = join(staging, 'archive.tar.gz')
    await Bun.Archive.write(temp, archiveEntries(manifest, files), { compress: 'gzip' })
    chmodSync(temp, 0o600)
    try {
      linkSync(temp, path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${path} already exists; give another --out or remove it first.`)
      throw error
    }
    return { path, size: statSync(path).size, ms: Math.round(performance.now() - started), manifest }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

export interface RestoreResult {
  manifest: Manifest
  database: string
  /** restored: written where there was none; replaced: over the current one (--config-too); kept: the current one stays; absent: the backup has none */
  config: 'restored' | 'replaced' | 'kept' | 'absent'
  configPath: string
  /** where the replaced files were moved, or null when nothing was there */
  asideDir: string | null
  /** secrets the restored config took over from the current one */
  secretsFilled: string[]
  /** secrets the restored config still lacks (placeholders) */
  secretsMissing: string[]
}

/**
 * Restores a backup into the data directory of `configPath` (the caller has made sure no gateway runs on it).
 * Everything is verified first — the archive, every checksum, the database's integrity and schema version —
 * and only then is anything moved: the current database (with its -wal and -shm) and, when replaced, the
 * current config go to `<dataDir>/backups/before-restore-<UTC time>/`.
 *
 * The config: restored when there is none; otherwise kept unless `configToo`. A restored config whose secrets
 * were left out of the backup takes them from the current config where it has the same key; the others stay
 * placeholders (the gateway refuses to start until they are filled in).
 */
export async function restoreBackup(options: { file: string; configPath: string; configToo: boolean; env: Env; now?: Date }): Promise<RestoreResult> {
  const { file, configPath, configToo, env } = options
  const now = options.now ?? new Date()
  let bytes: Uint8Array
  try {
    if (!statSync(file).isFile()) throw new CliError(`${file} is not a file.`)
    bytes = readFileSync(file)
  } catch (error) {
    if (error instanceof CliError) throw error
    throw new CliError(`Cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`)
  }
  const backup = await verifyBackup(file, bytes)
  const { manifest } = backup
  if (manifest.schema_version > migrations.length) {
    throw new DataError(`${file} holds a database written by a newer xopcbot (schema ${manifest.schema_version}, this version knows ${migrations.length}); upgrade xopcbot first. Nothing was changed.`)
  }

  const currentText = readConfigText(configPath)
  const writeConfig = backup.config !== null && (currentText === null || configToo)
  let newConfigText: string | null = null
  let secretsFilled: string[] = []
  let secretsMissing: string[] = []
  if (writeConfig) {
    const filled = fillSecrets(JSON.parse(backup.config!), currentText === null ? null : readRawConfig(configPath))
    secretsFilled = filled.filled
    secretsMissing = filled.missing
    // Secrets taken over change the text; otherwise the file goes back exactly as it was backed up.
    newConfigText = secretsFilled.length ? JSON.stringify(filled.config, null, 2) + '\n' : backup.config
  }
  // The data directory of the config that will be in use afterwards (a restored one may set its own dataDir).
  const dataDir = dataDirOf(effectiveConfig(configPath, newConfigText, env), configPath)
  const dbPath = databasePathOf(dataDir)

  ensurePrivateDir(dataDir)
  const staging = join(dataDir, `.restore-${process.pid}-${stamp(now)}`)
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { mode: 0o700 })
  try {
    const staged = join(staging, DATABASE_FILE)
    writeFileSync(staged, backup.database, { mode: 0o600 })
    // On disk before it replaces the current database: a power loss must not leave an empty file in its place.
    const fd = openSync(staged, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    checkRestoredDatabase(file, staged)

    // Verified: from here on, things move.
    const asideDir = freePath(join(dataDir, 'backups', `before-restore-${stamp(now)}`))
    const moved: string[] = []
    const moveAside = (path: string, name: string) => {
      if (!existsSync(path)) return
      ensurePrivateDir(asideDir)
      renameSync(path, join(asideDir, name))
      moved.push(name)
    }
    for (const suffix of ['', '-wal', '-shm']) moveAside(dbPath + suffix, DATABASE_FILE + suffix)
    renameSync(staged, dbPath)
    let config: RestoreResult['config'] = backup.config === null ? 'absent' : 'kept'
    if (newConfigText !== null) {
      if (currentText !== null) {
        ensurePrivateDir(asideDir)
        writeFileSync(join(asideDir, CONFIG_FILE), currentText, { mode: 0o600 })
        moved.push(CONFIG_FILE)
      }
      ensurePrivateDir(dirname(configPath))
      writeFileAtomic(configPath, newConfigText, { mode: 0o600 })
      config = currentText === null ? 'restored' : 'replaced'
    }
    return { manifest, database: dbPath, config, configPath, asideDir: moved.length ? asideDir : null, secretsFilled, secretsMissing }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

/** The config (only the keys restore reads) after the restore: the new text if one is written, else the file. */
function effectiveConfig(configPath: string, newText: string | null, env: Env): Config {
  if (newText === null) return loadConfig(configPath, env, { needs: BACKUP_NEEDS }).config
  const raw = JSON.parse(newText) as Record<string, unknown>
  const needed = Object.fromEntries(BACKUP_NEEDS.filter((key) => Object.hasOwn(raw, key)).map((key) => [key, raw[key]]))
  const problems: string[] = []
  const substituted = substituteEnv(needed, env, problems)
  const result = problems.length ? null : Config.safeParse(substituted)
  if (!result?.success) throw new ConfigError(`config in the backup`, result ? describeIssues(result.error.issues) : problems)
  return result.data
}

/** The restored database must pass a full integrity check and have a schema this version can open. */
function checkRestoredDatabase(file: string, path: string) {
  let db: Database | null = null
  try {
    db = new Database(path, { readonly: true, strict: true })
    const problems = (db.query('PRAGMA integrity_check').values() as unknown[][]).map((row) => String(row[0])).filter((line) => line !== 'ok')
    if (problems.length) throw new DataError(`The database in ${file} is damaged (integrity check: ${problems[0]}). Nothing was changed.`)
    const version = (db.query('PRAGMA user_version').get() as { user_version: number }).user_version
    if (version > migrations.length) throw new DataError(`The database in ${file} was written by a newer xopcbot (schema ${version}, this version knows ${migrations.length}); upgrade xopcbot first. Nothing was changed.`)
  } catch (error) {
    if (error instanceof DataError) throw error
    throw new DataError(`The database in ${file} cannot be opened (${(error as Error).message}). Nothing was changed.`, { cause: error })
  } finally {
    db?.close()
  }
}

// --- scheduled backups -------------------------------------------------------------------------------------

const SCHEDULED_PREFIX = 'xopcbot-scheduled'
const SCHEDULED_NAME = /^xopcbot-scheduled-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz$/
const SCHEDULED_PARTIAL = /^xopcbot-scheduled-\d{8}T\d{6}Z(?:-\d+)?\.tar\.gz\.partial$/

/**
 * Deletes all but the newest `keep` scheduled backups in `dir`, and what a killed one left half-written (runs never
 * overlap, so none is under way); other files are never touched. Returns the backups it deleted.
 */
export function pruneScheduledBackups(dir: string, keep: number): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const order = (name: string) => {
    const match = SCHEDULED_NAME.exec(name)!
    return `${match[1]}-${(match[2] ?? '1').padStart(6, '0')}`
  }
  const scheduled = names.filter((name) => SCHEDULED_NAME.test(name)).sort((a, b) => (order(a) < order(b) ? 1 : -1))
  for (const name of names) if (SCHEDULED_PARTIAL.test(name)) rmSync(join(dir, name), { recursive: true, force: true })
  const removed: string[] = []
  for (const name of scheduled.slice(keep)) {
    rmSync(join(dir, name), { force: true })
    removed.push(join(dir, name))
  }
  return removed
}

/**
 * The restores that have staged their files in `dataDir` (`.restore-<pid>-<time>`): `running` while that process
 * lives. A gateway must not start meanwhile (it would open the database the restore is about to move aside); a
 * leftover of one that was killed is only worth a warning: its old data is in backups/before-restore-*.
 */
export function restoresIn(dataDir: string): { path: string; pid: number; running: boolean }[] {
  let names: string[]
  try {
    names = readdirSync(dataDir)
  } catch {
    return []
  }
  return names.flatMap((name) => {
    const pid = Number(/^\.restore-(\d+)-/.exec(name)?.[1])
    return pid ? [{ path: join(dataDir, name), pid, running: isRunning(pid) }] : []
  })
}

/** How long a scheduled backup may take before it is stopped. */
const BACKUP_TIME_LIMIT_MS = 60 * 60_000

export interface BackupScheduleDeps {
  configPath: string
  dataDir: string
  /** the command that runs this program (`xopcbot`): each backup is `<command> backup --config … --out … --json` */
  command: string[]
  env: Env
  log: Logger
}

/**
 * The running gateway's scheduled backups (`backup.schedule`). Each one runs `xopcbot backup` as a child process,
 * so the copy and the compression never hold up the gateway's event loop; runs never overlap. After each, all but
 * the newest `backup.keep` scheduled backups are deleted. Every backup and every failure is logged.
 */
export class BackupSchedule {
  private readonly cron: Cron
  private readonly log: Logger
  private running: { proc: Subprocess; path: string } | null = null
  private stopped = false

  private constructor(
    private readonly config: Config,
    private readonly deps: BackupScheduleDeps,
  ) {
    this.log = deps.log.withTag('backup')
    // A run still going when the next is due (a huge database, a slow disk): the next is skipped, and said so.
    const skipped = () => this.log.warn('scheduled backup skipped: the previous one is still running', { path: this.running?.path })
    this.cron = new Cron(config.backup.schedule!, { timezone: config.cron.timezone, protect: skipped }, () => this.run())
  }

  /** Starts the schedule of `config.backup`, or returns null when it has none. */
  static start(config: Config, deps: BackupScheduleDeps): BackupSchedule | null {
    return config.backup.schedule ? new BackupSchedule(config, deps) : null
  }

  /** One backup now; resolves when it is written (or failed) and old ones are pruned. */
  async run(): Promise<void> {
    if (this.stopped) return
    const started = performance.now()
    const dir = backupDirOf(this.config, this.deps.dataDir)
    let path: string | null = null
    try {
      ensurePrivateDir(dir)
      path = backupPath(dir, SCHEDULED_PREFIX, new Date())
      const proc = Bun.spawn([...this.deps.command, 'backup', '--config', this.deps.configPath, '--out', path, '--json'], {
        env: this.deps.env,
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
        // A backup that hangs (a stuck disk) must not stop every later one.
        timeout: BACKUP_TIME_LIMIT_MS,
        killSignal: 'SIGKILL',
      })
      this.running = { proc, path }
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
      this.running = null
      // Killed by stop(): nothing was written.
      if (code !== 0 && this.stopped) return
      if (code !== 0) {
        if (proc.signalCode === 'SIGKILL') rmSync(`${path}.partial`, { recursive: true, force: true })
        // The command's own sentence (its last "❌" line) says why.
        const reason = proc.signalCode === 'SIGKILL' && !this.stopped ? `it took longer than ${BACKUP_TIME_LIMIT_MS / 60_000} minutes and was stopped` : stderr.split('\n').filter((line) => line.trim()).findLast((line) => line.startsWith('❌'))?.replace(/^❌\s*/, '') ?? `exit code ${code}`
        this.log.error('scheduled backup failed', { path, code, reason, ms: Math.round(performance.now() - started) })
        return
      }
      const removed = pruneScheduledBackups(dir, this.config.backup.keep)
      // Finished just as the gateway stopped: kept and pruned, but the log is closed by now.
      if (this.stopped) return
      const result = JSON.parse(stdout) as { path: string; size: number }
      this.log.info('backup written', { path: result.path, size: result.size, ms: Math.round(performance.now() - started) })
      if (removed.length) this.log.info('old backups deleted', { count: removed.length, keep: this.config.backup.keep })
    } catch (error) {
      this.running = null
      if (this.stopped) return
      this.log.error('scheduled backup failed', { path, reason: (error as Error).message, ms: Math.round(performance.now() - started) })
    }
  }

  /** No more runs; a backup under way is killed and its partial files removed (what is left, the next prune removes). */
  stop() {
    this.stopped = true
    this.cron.stop()
    const running = this.running
    if (running) {
      running.proc.kill('SIGKILL')
      const removePartial = () => rmSync(`${running.path}.partial`, { recursive: true, force: true })
      removePartial()
      void running.proc.exited.then(removePartial)
    }
  }
}
