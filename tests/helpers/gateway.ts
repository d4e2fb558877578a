import { hostFile } from '../../build/targets'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Subprocess } from 'bun'
import { lockPathFor, readLock } from '../../src/lifecycle/lock'
import { findFreePort } from '../../src/lifecycle/ports'
import { waitFor } from './wait'

export const ROOT = resolve(import.meta.dir, '../..')
export const ENTRY = join(ROOT, 'src/index.ts')

export const freePort = findFreePort

export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'xopcbot-e2e-'))
}

/** The default config file of a HOME: `~/.xopcbot/config.json`. */
export const configPathOf = (home: string) => join(home, '.xopcbot', 'config.json')

/** Writes the default config file of `home`: an object as JSON, a string as it is (malformed or with a BOM). */
export function writeConfig(home: string, config: unknown): string {
  mkdirSync(join(home, '.xopcbot'), { recursive: true })
  const path = configPathOf(home)
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config))
  return path
}

/** A new temp HOME whose default config file (`~/.xopcbot/config.json`) holds `config`. */
export function homeWithConfig(config: unknown): string {
  const home = tempHome()
  writeConfig(home, config)
  return home
}

/** The lock file of the gateway that runs on the default config of `home`, and what it holds (null: none). */
export const lockPathOf = (home: string) => lockPathFor(join(home, '.xopcbot', 'locks'), configPathOf(home))
export const lockOf = (home: string) => readLock(lockPathOf(home))

/** The environment of a child process: a private HOME and nothing of ours inherited. */
export function childEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('XOPCBOT_')) env[key] = value
  }
  return { ...env, HOME: home, NO_COLOR: '1', ...extra }
}

/** How to start the CLI: from source with Bun, or a compiled binary. */
export type Runner = string[]
export const fromSource: Runner = [process.execPath, ENTRY]

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI to completion. */
export async function runCli(args: string[], { home = tempHome(), env = {}, runner = fromSource, timeoutMs = 20_000 } = {}): Promise<RunResult> {
  const proc = Bun.spawn([...runner, ...args], { env: childEnv(home, env), stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface RunningGateway {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  port: number
  home: string
  url: string
  output: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number>
}

/** Starts `xopcbot gateway` as a real process and waits until /health answers 200. */
export async function startGateway({
  args = [],
  env = {},
  home = tempHome(),
  runner = fromSource,
  port,
}: { args?: string[]; env?: Record<string, string>; home?: string; runner?: Runner; port?: number } = {}): Promise<RunningGateway> {
  const listenPort = port ?? (await freePort())
  const proc = Bun.spawn([...runner, 'gateway', '--port', String(listenPort), '--host', '127.0.0.1', ...args], {
    env: childEnv(home, env),
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: 'ignore',
  })
  let out = ''
  const decoder = new TextDecoder()
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true })
  }
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)])
  const url = `http://127.0.0.1:${listenPort}`
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}: ${out}`)
        return (await fetch(`${url}/health`)).status === 200
      },
      { what: 'gateway /health', timeoutMs: 15_000 },
    )
  } catch (error) {
    proc.kill('SIGKILL')
    throw error
  }
  return {
    proc,
    port: listenPort,
    home,
    url,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      proc.kill(signal)
      const code = await proc.exited
      await pumped
      return code
    },
  }
}

/** Compiles the release binary with the real build script into a temporary folder: the runner of that file. */
export function buildBinary(): Runner {
  const outdir = mkdtempSync(join(tmpdir(), 'xopcbot-bin-'))
  const build = Bun.spawnSync([process.execPath, join(ROOT, 'build/build.ts'), '--outdir', outdir, '--no-smoke'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`)
  return [join(outdir, hostFile())]
}
