import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'

/**
 * A real systemd user manager for the tests, in a private XDG_RUNTIME_DIR with its own HOME (so it reads
 * units from that HOME). Returns null, with the reason, where one cannot run.
 */
export async function startUserManager(home: string): Promise<{ env: Record<string, string>; stop: () => Promise<void> } | { skip: string }> {
  if (process.platform !== 'linux') return { skip: 'systemd needs Linux' }
  if (!existsSync('/lib/systemd/systemd')) return { skip: '/lib/systemd/systemd is not installed' }
  try {
    mkdirSync('/run/systemd/system', { recursive: true })
  } catch (error) {
    return { skip: `cannot create /run/systemd/system (${(error as Error).message})` }
  }
  const runtime = mkdtempSync(join(tmpdir(), 'xopcbot-xdg-'))
  chmodSync(runtime, 0o700)
  const env: Record<string, string> = { ...(process.env as Record<string, string>), HOME: home, XDG_RUNTIME_DIR: runtime }
  delete env.DBUS_SESSION_BUS_ADDRESS
  delete env.XDG_CONFIG_HOME
  const manager: Subprocess = Bun.spawn(['/lib/systemd/systemd', '--user'], { env, stdout: 'ignore', stderr: 'pipe' })
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const probe = Bun.spawnSync(['systemctl', '--user', 'is-system-running'], { env })
    const state = probe.stdout.toString().trim()
    if (state === 'running' || state === 'degraded') {
      return {
        env,
        stop: async () => {
          Bun.spawnSync(['systemctl', '--user', 'exit'], { env })
          const exited = await Promise.race([manager.exited, Bun.sleep(5000).then(() => null)])
          if (exited === null) manager.kill('SIGKILL')
        },
      }
    }
    if (manager.exitCode !== null) return { skip: `systemd --user exited: ${(await new Response(manager.stderr as ReadableStream).text()).trim().split('\n').at(-1)}` }
    await Bun.sleep(100)
  }
  manager.kill('SIGKILL')
  return { skip: 'the systemd user manager did not start within 15 s' }
}
