import { homedir, userInfo } from 'node:os'
import { LaunchdManager } from './launchd'
import { SchtasksManager } from './schtasks'
import { SystemdManager } from './systemd'
import { runCommand, ServiceError, type ServiceContext, type ServiceManager } from './types'

export function serviceContext(overrides: Partial<ServiceContext> = {}): ServiceContext {
  return {
    platform: process.platform,
    env: process.env,
    homeDir: process.env.HOME || homedir(),
    uid: process.getuid?.() ?? 0,
    user: process.env.USER || process.env.LOGNAME || userInfo().username,
    run: runCommand,
    ...overrides,
  }
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
