import { Elysia } from 'elysia'
import { AppError } from '../errors'
import type { AppDeps } from './deps'

/** GET /api/status: what this gateway is, where it listens, and how its parts are doing. */
export function statusRoutes(deps: Pick<AppDeps, 'version' | 'startedAt' | 'now' | 'info' | 'agent' | 'channels' | 'mcp' | 'queue' | 'cron' | 'modelName' | 'redact' | 'configState'>) {
  return new Elysia({ name: 'status', prefix: '/api' }).get('/status', function status() {
    const model = deps.agent?.model
    // A channel's reason quotes errors from elsewhere: it goes through the one redaction, like every error text.
    const channels = Object.fromEntries(
      Object.entries(deps.channels?.report(deps.now()) ?? {}).map(([name, report]) => [name, report.error !== undefined && deps.redact ? { ...report, error: deps.redact(report.error) } : report]),
    )
    return {
      status: 'ok',
      version: deps.version,
      pid: process.pid,
      started_at: new Date(deps.startedAt).toISOString(),
      uptime: Math.floor((deps.now() - deps.startedAt) / 1000),
      config_path: deps.info.configPath,
      data_dir: deps.info.dataDir,
      bind: { host: deps.info.host, port: deps.info.port },
      model: {
        // The agent's own (a reload may have changed it), else the name the app was given.
        name: deps.agent?.models.slots[0]?.name ?? deps.modelName ?? null,
        configured: !!model && !(model instanceof AppError),
        ...(model instanceof AppError ? { problem: model.message } : {}),
      },
      // The primary and each fallback (failure reasons are the turns' error texts, already redacted).
      models: deps.agent?.modelReport() ?? [],
      usage_today: deps.agent?.usageToday(new Date(deps.now())) ?? null,
      channels,
      mcp: deps.mcp?.report() ?? {},
      queue: deps.queue?.depth() ?? null,
      cron: deps.cron ? { ...deps.cron.count(), next_run: deps.cron.nextRun() } : null,
      ...(deps.configState ? { config: deps.configState() } : {}),
    }
  })
}
