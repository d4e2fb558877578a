import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../src/logging/logger'
import { createApp, type AppDeps } from '../../src/server/app'

/** The real app with real dependencies (a logger writing to a temp file); any of them can be replaced. */
export function makeApp(overrides: Partial<AppDeps> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'xopcbot-app-'))
  const logFile = join(dir, 'gateway.log')
  const logger = createLogger({ level: 'debug', console: false, file: { path: logFile, maxBytes: 1 << 20, maxFiles: 2 } })
  const deps: AppDeps = {
    version: '9.9.9',
    startedAt: Date.now() - 3_500,
    now: Date.now,
    log: logger.log,
    isDraining: () => false,
    token: () => null,
    maxBodyBytes: 1024,
    corsOrigins: [],
    info: { configPath: join(dir, 'config.json'), dataDir: dir, host: '127.0.0.1', port: 18790 },
    peerAddress: () => '127.0.0.1',
    ...overrides,
  }
  return { app: createApp(deps), deps, logger, logFile }
}

export function request(path: string, init: RequestInit & { host?: string } = {}) {
  return new Request(`http://${init.host ?? 'localhost'}${path}`, init)
}
