import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { hostFile } from '../build/targets'

export const ROOT = resolve(import.meta.dir, '..')
export const quick = process.argv.includes('--quick')
export type Row = [name: string, value: string, note: string]

// ── cleanup: every process and directory a bench makes is undone when it exits, even after an error ──

const children = new Set<Bun.Subprocess>()
const dirs = new Set<string>()

/** Kills what is still running in a temp home: a gateway started by `restart` is no child of ours. */
function killGatewaysOf(home: string) {
  const locks = join(home, '.xopcbot', 'locks')
  if (!existsSync(locks)) return
  for (const file of readdirSync(locks).filter((f) => f.endsWith('.lock'))) {
    try {
      const pid = Number(JSON.parse(readFileSync(join(locks, file), 'utf8')).pid)
      // The lock may outlive its process and the PID be reused: only a gateway is killed.
      if (pid > 1 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('gateway')) process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

export function cleanup() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  children.clear()
  for (const dir of dirs) {
    killGatewaysOf(dir)
    rmSync(dir, { recursive: true, force: true })
  }
  dirs.clear()
}
process.on('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `xopcbot-bench-${prefix}-`))
  dirs.add(dir)
  return dir
}

export function removeDir(dir: string) {
  killGatewaysOf(dir)
  rmSync(dir, { recursive: true, force: true })
  dirs.delete(dir)
}

/** Registers a child for cleanup at exit. */
export function track<P extends Bun.Subprocess>(proc: P): P {
  children.add(proc)
  void proc.exited.then(() => children.delete(proc))
  return proc
}

/** A server or gateway in the background, its output discarded (the gateway's log goes to its file anyway). */
export const spawn = (command: string[], env: Record<string, string>) => track(Bun.spawn(command, { env, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' }))

/** SIGTERM, then SIGKILL when it has not exited after `graceMs`. */
export async function stop(proc: Bun.Subprocess, graceMs = 7000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
  await proc.exited
  clearTimeout(timer)
}

// ── numbers ──

export function freePort(): number {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() })
  const port = server.port!
  server.stop(true)
  return port
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** 79942.3 → "79,942" */
export const int = (n: number) => Math.round(n).toLocaleString('en')
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`
export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`
/** Resident memory of a process, in bytes (Linux). */
export const rss = (pid: number) => 1024 * Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)

/** CPU time a process has used (user + system), in ms (Linux, 100 ticks a second). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

// ── what is measured ──

/** Newest modification time under `path` (a file or a directory tree). */
function newest(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false })
  if (!stat) return 0
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(0, ...readdirSync(path).map((entry) => newest(join(path, entry))))
}

/**
 * The host binary of `npm run build`, rebuilt when src/ (or the build) changed since dist/ was made, so the
 * figures are those of the code in the tree. all.ts builds once and hands the path on (XOPCBOT_BENCH_BINARY).
 */
export function ensureBinary(): string {
  if (process.env.XOPCBOT_BENCH_BINARY) return process.env.XOPCBOT_BENCH_BINARY
  const binary = join(ROOT, 'dist', hostFile())
  const built = statSync(binary, { throwIfNoEntry: false })?.mtimeMs ?? 0
  const sources = Math.max(...['src', 'build', 'package.json', 'bun.lock'].map((p) => newest(join(ROOT, p))))
  if (built >= sources) {
    binaryNote = `dist/${hostFile()}, up to date with the tree`
    return binary
  }
  console.error(built ? 'building the binary (the sources changed since dist/ was built) …' : 'building the binary …')
  const build = Bun.spawnSync([process.execPath, join(ROOT, 'build/build.ts'), '--no-smoke'], { cwd: ROOT, stdout: 'ignore', stderr: 'inherit' })
  binaryNote = `dist/${hostFile()}, built from the tree at the start of the run`
  if (build.exitCode !== 0) {
    // Others edit src/ while benches run: a tree that does not build right now should not stop the figures.
    if (!built) throw new Error('build failed')
    binaryNote = `⚠️ dist/${hostFile()} of ${new Date(built).toISOString()}: the tree did not build at the start of the run`
    console.error(`⚠️  the build failed: measuring the binary already in dist/`)
  }
  return binary
}

/** What ensureBinary measured: built now, up to date, or an older build because the tree did not build. */
export let binaryNote = ''


const COMPILE_FLAGS = ['--compile', '--minify', '--sourcemap=none', '--bytecode', '--format=esm', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig']

/**
 * The physical references, compiled with the product's own flags by this Bun: bare Bun.serve, a minimal
 * Elysia app, a one-line hello. Kept in node_modules/.cache, keyed by their source, Bun and Elysia versions.
 */
export function ensureReferences(): { bare: string; elysia: string; hello: string } {
  const cache = join(ROOT, 'node_modules', '.cache', 'xopcbot-bench')
  mkdirSync(cache, { recursive: true })
  const elysiaVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/elysia/package.json'), 'utf8')).version
  const compile = (name: string) => {
    const source = join(ROOT, 'bench', `${name}.ts`)
    const key = Bun.hash(`${readFileSync(source, 'utf8')}|${Bun.version}|${elysiaVersion}|${COMPILE_FLAGS.join(' ')}`).toString(36)
    const outfile = join(cache, `${name}-${key}`)
    if (existsSync(outfile)) return outfile
    for (const old of readdirSync(cache)) if (old.startsWith(`${name}-`)) rmSync(join(cache, old), { force: true })
    const build = Bun.spawnSync([process.execPath, 'build', source, ...COMPILE_FLAGS, '--outfile', `${outfile}.tmp`], { cwd: ROOT, stdout: 'ignore', stderr: 'inherit' })
    if (build.exitCode !== 0) throw new Error(`compiling bench/${name}.ts failed`)
    // Renamed only when complete, so an interrupted build is never taken for a finished one.
    renameSync(`${outfile}.tmp`, outfile)
    return outfile
  }
  return { bare: compile('bare-server'), elysia: compile('elysia-server'), hello: compile('hello') }
}

// ── gateways ──

/** A home with .xopcbot/config.json (when given) for a gateway of its own. */
export function gatewayHome(prefix: string, config?: unknown): string {
  const home = tempDir(prefix)
  mkdirSync(join(home, '.xopcbot'), { mode: 0o700 })
  if (config) writeFileSync(join(home, '.xopcbot', 'config.json'), JSON.stringify(config), { mode: 0o600 })
  return home
}

export const envOf = (home: string, extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1', ...extra })

export async function waitHealthy(port: number, proc?: Bun.Subprocess, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false)) return
    if (performance.now() > deadline || (proc && proc.exitCode !== null)) throw new Error(`nothing healthy on port ${port}${proc?.exitCode != null ? ` (exit ${proc.exitCode})` : ''}`)
    // Polling costs CPU that the starting process needs on a 2-core machine: 3 ms apart is a fair compromise.
    await Bun.sleep(3)
  }
}

export interface Server {
  proc: Bun.Subprocess
  port: number
  url: string
  /** spawn → first 200 on /health */
  readyMs: number
}

/** Starts a server that listens on `port` and times it until /health answers 200. */
export async function startServer(command: string[], port: number, env: Record<string, string>): Promise<Server> {
  const started = performance.now()
  const proc = spawn(command, env)
  await waitHealthy(port, proc)
  return { proc, port, url: `http://127.0.0.1:${port}`, readyMs: performance.now() - started }
}

/** `<command> gateway` on 127.0.0.1 with HOME = `home`; `command` is the binary, or Bun and src/index.ts. */
export function startGateway(command: string | string[], home: string, { port = freePort(), env = {} }: { port?: number; env?: Record<string, string> } = {}) {
  return startServer([...[command].flat(), 'gateway', '--host', '127.0.0.1', '--port', String(port)], port, envOf(home, env))
}

/** A compiled reference server (bare-server.ts, elysia-server.ts): its port is its argument. */
export const startReference = (binary: string, port = freePort()) => startServer([binary, String(port)], port, { PATH: process.env.PATH ?? '' })

/** The config a user runs with the fakes: default agent and logging settings, the fake as the model. */
export const fakeConfig = (llmUrl: string, telegram?: { url: string; token: string }) => ({
  agent: { model: 'fake/bench' },
  providers: { fake: { type: 'openai-compatible', baseURL: `${llmUrl}/v1` } },
  ...(telegram ? { channels: { telegram: { enabled: true, token: telegram.token, apiRoot: telegram.url } } } : {}),
})

// ── output ──

export const machine = () => `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}-${process.arch}, Bun ${Bun.version}`
// The load average says how busy the shared machine was when a table was measured.
const header = (title: string) => `${title} — ${new Date().toISOString()} — ${machine()}, load ${loadavg()[0]!.toFixed(1)}`

export function printTable(title: string, rows: Row[]) {
  const width = Math.max(...rows.map((r) => r[0].length))
  const valueWidth = Math.max(...rows.map((r) => r[1].length))
  console.log(header(title))
  for (const [name, value, note] of rows) console.log(`${name.padEnd(width)}  ${value.padEnd(valueWidth)}  ${note}`.trimEnd())
}

/** A table with a header row: the first column left-aligned, the others right-aligned; notes below it. */
export function printGrid(title: string, head: string[], rows: string[][], notes: string[] = []) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()
  console.log(header(title))
  console.log(line(head))
  for (const row of rows) console.log(line(row))
  for (const note of notes) console.log(note)
}

/**
 * A figure with an aim: the row's note says the reference, the ratio and the aim; all.ts gathers these lines
 * (through XOPCBOT_BENCH_SUMMARY) into the table of aims at the top of RESULTS.md.
 */
export function aim(row: Row, met: boolean): Row {
  if (process.env.XOPCBOT_BENCH_SUMMARY) appendFileSync(process.env.XOPCBOT_BENCH_SUMMARY, `${JSON.stringify({ row, met })}\n`)
  return row
}
