import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { pollUntil } from '../util/poll'
import { pidExists, readCommandLine, maskTokenText, signalGateway, waitForExit, waitForPidExit, type GatewayIdentity } from './process'

function run(command: string[]): string | null {
  try {
    const result = Bun.spawnSync(command, { stdout: 'pipe', stderr: 'ignore', env: { LC_ALL: 'C', PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } })
    return result.exitCode === 0 ? result.stdout.toString() : null
  } catch {
    return null
  }
}

/** Inodes of sockets listening on `port`, from /proc/net/tcp and tcp6 (state 0A = LISTEN). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>()
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9] && fields[9] !== '0') inodes.add(fields[9])
    }
  }
  return inodes
}

function procScan(port: number): number[] {
  const inodes = listeningInodes(port)
  if (!inodes.size) return []
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let fds: string[] = []
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${entry}/fd/${fd}`)
        if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) {
          pids.push(Number(entry))
          break
        }
      } catch {}
    }
  }
  return pids
}

/** PIDs of the processes listening on a TCP port: lsof, then ss, then a /proc scan (Linux); netstat on Windows. */
export function findListeners(port: number, platform: NodeJS.Platform = process.platform): number[] {
  if (platform === 'win32') {
    const out = run(['netstat', '-ano', '-p', 'TCP']) ?? ''
    const pids = out
      .split(/\r?\n/)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[1]?.endsWith(`:${port}`) && /LISTEN/i.test(f[3] ?? ''))
      .map((f) => Number(f[4]))
    return [...new Set(pids.filter((pid) => pid > 0))]
  }
  const lsof = run(['lsof', '-nP', '-t', `-iTCP:${port}`, '-sTCP:LISTEN'])
  if (lsof !== null) return [...new Set(lsof.split('\n').filter(Boolean).map(Number))]
  const ss = run(['ss', '-ltnpH', `sport = :${port}`])
  if (ss !== null) return [...new Set([...ss.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))]
  return platform === 'linux' ? [...new Set(procScan(port))] : []
}

/** The command line of a process, for reports (a `--token` value masked). */
export function describeProcess(pid: number): string {
  return maskTokenText(readCommandLine(pid)?.text || '(unknown command)')
}

function ownerUid(pid: number): number | null {
  try {
    return statSync(`/proc/${pid}`).uid
  } catch {}
  const out = run(['ps', '-o', 'uid=', '-p', String(pid)])
  return out && /^\s*\d+\s*$/.test(out) ? Number(out) : null
}

/** Why `pid` must not be killed by `--force`, or null when it may be (SPEC §5.4). */
export function refuseToKill(pid: number, context = { self: process.pid, parent: process.ppid, uid: process.getuid?.() ?? null }): string | null {
  if (pid <= 1) return 'it is PID 1 (the init process)'
  if (pid === context.self) return 'it is this process'
  if (pid === context.parent) return 'it is the parent of this process'
  if (context.uid !== null) {
    const owner = ownerUid(pid)
    if (owner !== null && owner !== context.uid) return `it belongs to another user (uid ${owner})`
  }
  return null
}

/** Resolves true when nothing listens on host:port any more (we can bind it). */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

export interface Killed {
  pid: number
  command: string
  signal: 'SIGTERM' | 'SIGKILL'
}

/**
 * SIGTERM, 700 ms, then SIGKILL if it is still there (SPEC §5.4). With the lock of a gateway, each signal goes
 * only while its PID is verified to be that gateway (SPEC §7); null when nothing was sent.
 */
export async function terminate(pid: number, lock: GatewayIdentity | null, graceMs = 700): Promise<Killed['signal'] | null> {
  const send = (signal: Killed['signal']) => {
    try {
      if (lock) return signalGateway(lock, signal).kind === 'gateway'
      process.kill(pid, signal)
    } catch {
      return !lock
    }
    return true
  }
  const gone = (ms: number) => (lock ? waitForExit(lock, ms) : waitForPidExit(pid, ms))
  if (!send('SIGTERM')) return null
  if (await gone(graceMs)) return 'SIGTERM'
  if (!send('SIGKILL')) return 'SIGTERM'
  await gone(5000)
  return 'SIGKILL'
}

/**
 * `--force`: kills whatever listens on the port (within the safety rules) and waits until the port can be
 * bound. Returns what it killed; throws when a listener may not be killed.
 */
export async function freeThePort(host: string, port: number): Promise<{ killed: Killed[]; refused: { pid: number; command: string; reason: string }[] }> {
  const killed: Killed[] = []
  const refused: { pid: number; command: string; reason: string }[] = []
  for (const pid of findListeners(port)) {
    if (!pidExists(pid)) continue
    const command = describeProcess(pid)
    const reason = refuseToKill(pid)
    if (reason) {
      refused.push({ pid, command, reason })
      continue
    }
    killed.push({ pid, command, signal: (await terminate(pid, null))! })
  }
  if (killed.length) await pollUntil(() => canBind(host, port), { timeoutMs: 5000, intervalMs: 50 })
  return { killed, refused }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it; it is released at once). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
