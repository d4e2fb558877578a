import { homedir, userInfo } from 'node:os'
import { LaunchdManager } from './launchd'
import { SchtasksManager } from './schtasks'
import { SystemdManager } from './systemd'
import { runCommand, ServiceError, type ServiceContext, type ServiceManager } from './types'

export function serviceContext(overrides: Partial<ServiceContext> = {}): ServiceContext {
  const uid = overrides.uid ?? process.getuid?.() ?? 0
  return {
    platform: process.platform,
    env: process.env,
    homeDir: process.env.HOME || homedir(),
    uid,
    user: overrides.user ?? loginName(process.env, uid, overrides.platform ?? process.platform),
    run: runCommand,
    ...overrides,
  }
}

/**
 * This user's login name, for loginctl and the task's UserId. Bun's os.userInfo() only repeats $USER and says
 * "unknown" without it, so then the account of this uid is asked for (`id -un`, which also knows users of a
 * directory service); the uid itself is the last resort, which loginctl takes as well.
 */
export function loginName(env: Record<string, string | undefined>, uid: number, platform: NodeJS.Platform): string {
  let name: string | undefined
  try {
    name = userInfo().username
  } catch {}
  if (name && name !== 'unknown') return name
  const named = env.LOGNAME || (platform === 'win32' ? env.USERNAME : undefined)
  if (named) return named
  if (platform !== 'win32') {
    try {
      const id = Bun.spawnSync(['id', '-un'], { stdout: 'pipe', stderr: 'ignore', stdin: 'ignore' })
      const out = id.stdout.toString().trim()
      if (id.exitCode === 0 && out) return out
    } catch {}
  }
  return String(uid)
}

/** The service manager of the platform (SPEC §9). */
export function serviceManager(ctx: ServiceContext): ServiceManager {
  switch (ctx.platform) {
    case 'linux':
      return new SystemdManager(ctx)
    case 'darwin':
      return new LaunchdManager(ctx)
    case 'win32':
      return new SchtasksManager(ctx)
    default:
      throw new ServiceError(`installing as a service is not supported on ${ctx.platform}; run "xopcbot gateway" under your own supervisor`)
  }
}
