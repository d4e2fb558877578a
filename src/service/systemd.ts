import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../util/atomic-write'
import { ExitCode } from '../errors'
import { readEntry, refuseNewlines, ServiceError, type ServiceContext, type ServiceManager, type ServiceSpec, type ServiceStatus } from './types'

/**
 * A quoted systemd word, with `\` and `"` escaped and `%` (specifiers) doubled; on command lines (ExecStart)
 * `$` is doubled too, since systemd expands variables there but not in Environment=.
 */
export function systemdQuote(value: string, { commandLine = true } = {}): string {
  const escaped = value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')
  return `"${commandLine ? escaped.replace(/\$/g, '$$$$') : escaped}"`
}

/** Splits a systemd line back into words (the inverse of systemdQuote). */
export function systemdSplit(line: string, { commandLine = true } = {}): string[] {
  const words: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ') i++
    if (i >= line.length) break
    let word = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) {
          word += line[i + 1]
          i += 2
        } else word += line[i++]
      }
      i++
    } else while (i < line.length && line[i] !== ' ') word += line[i++]
    const unescaped = word.replace(/%%/g, '%')
    words.push(commandLine ? unescaped.replace(/\$\$/g, '$') : unescaped)
  }
  return words
}

/** The unit file (SPEC §9). Pure: everything it needs is in the spec. */
export function renderUnit(spec: ServiceSpec): string {
  refuseNewlines(spec)
  const env = Object.entries(spec.env)
    .map(([k, v]) => `Environment=${systemdQuote(`${k}=${v}`, { commandLine: false })}`)
    .join('\n')
  return `[Unit]
Description=${spec.description.replace(/%/g, '%%')}
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${[spec.program, ...spec.args].map((word) => systemdQuote(word)).join(' ')}
WorkingDirectory=${spec.workingDirectory.replace(/%/g, '%%')}
${env}
Restart=on-failure
RestartSec=2
# 75: the gateway asks to be restarted (graceful restart); 65: its database is damaged, 78: the config is
# invalid; restarting cannot help those two.
RestartForceExitStatus=${ExitCode.RESTART}
RestartPreventExitStatus=${ExitCode.DATA} ${ExitCode.CONFIG}
KillMode=mixed
TimeoutStopSec=${Math.ceil(spec.stopTimeoutMs / 1000) + 10}

[Install]
WantedBy=default.target
`
}

/** Reads back what a unit runs. */
export function parseUnit(text: string): { program: string | null; args: string[]; workingDirectory: string | null; env: Record<string, string> } {
  const value = (key: string) => text.split('\n').find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1) ?? null
  const exec = value('ExecStart')
  const words = exec ? systemdSplit(exec) : []
  const env: Record<string, string> = {}
  for (const line of text.split('\n').filter((l) => l.startsWith('Environment='))) {
    for (const word of systemdSplit(line.slice('Environment='.length), { commandLine: false })) {
      const eq = word.indexOf('=')
      if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1)
    }
  }
  const wd = value('WorkingDirectory')
  return { program: words[0] ?? null, args: words.slice(1), workingDirectory: wd?.replace(/%%/g, '%') ?? null, env }
}

/** systemd user units (`systemctl --user`). */
export class SystemdManager implements ServiceManager {
  readonly kind = 'systemd' as const

  constructor(private readonly ctx: ServiceContext) {}

  private unitDir() {
    return join(this.ctx.env.XDG_CONFIG_HOME || join(this.ctx.homeDir, '.config'), 'systemd', 'user')
  }

  entryPath(name: string) {
    return join(this.unitDir(), `${name}.service`)
  }

  private async systemctl(...args: string[]) {
    const result = await this.ctx.run(['systemctl', '--user', ...args])
    if (result.code !== 0) throw new ServiceError(`systemctl --user ${args.join(' ')} failed: ${(result.stderr || result.stdout).trim() || `exit ${result.code}`}`)
    return result.stdout
  }

  async unavailable(): Promise<string | null> {
    const probe = await this.ctx.run(['systemctl', '--user', 'show-environment'])
    if (probe.code === 127) return 'systemd is not installed here (no systemctl). Run the gateway in the foreground with "xopcbot gateway", or under another supervisor.'
    if (probe.code !== 0) {
      return `the systemd user manager is not reachable (${(probe.stderr || probe.stdout).trim().split('\n')[0]}). On WSL enable systemd in /etc/wsl.conf; in a container run "xopcbot gateway" in the foreground instead.`
    }
    return null
  }

  async install(spec: ServiceSpec, { start }: { start: boolean }): Promise<string[]> {
    const warnings: string[] = []
    const file = this.entryPath(spec.name)
    mkdirSync(dirname(file), { recursive: true })
    writeFileAtomic(file, renderUnit(spec), { mode: 0o644 })
    await this.systemctl('daemon-reload')
    await this.systemctl('enable', `${spec.name}.service`)
    // restart (not start): re-running install applies a changed unit to a running service.
    if (start) await this.systemctl('restart', `${spec.name}.service`)
    const linger = await this.ctx.run(['loginctl', 'show-user', this.ctx.user, '--property=Linger', '--value'])
    if (linger.stdout.trim() !== 'yes') {
      warnings.push(`lingering is off for ${this.ctx.user}: the gateway stops when you log out and starts at your next login. To keep it running: loginctl enable-linger ${this.ctx.user}`)
    }
    return warnings
  }

  async start(name: string) {
    await this.systemctl('start', `${name}.service`)
  }

  async stop(name: string) {
    await this.systemctl('stop', `${name}.service`)
  }

  async status(name: string): Promise<ServiceStatus> {
    const file = this.entryPath(name)
    const text = readEntry(file)
    // `systemctl show` exits 0 for units that do not exist: LoadState says whether it does.
    const out = await this.ctx.run(['systemctl', '--user', 'show', `${name}.service`, '--property=LoadState,ActiveState,SubState,MainPID'])
    const props = Object.fromEntries(out.stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    const installed = !!text && props.LoadState === 'loaded'
    const parsed = text ? parseUnit(text) : { program: null, args: [], workingDirectory: null }
    const active = props.ActiveState
    const state: ServiceStatus['state'] = !installed
      ? 'not-installed'
      : active === 'active'
        ? 'running'
        : active === 'activating' || active === 'reloading'
          ? 'starting'
          : active === 'failed'
            ? 'failed'
            : active === 'inactive' || active === 'deactivating'
              ? 'stopped'
              : 'unknown'
    const pid = Number(props.MainPID) > 0 ? Number(props.MainPID) : null
    return { installed, state, pid, program: parsed.program, args: parsed.args, workingDirectory: parsed.workingDirectory, file: text ? file : null, detail: `${active ?? '?'}/${props.SubState ?? '?'}` }
  }

  async uninstall(name: string) {
    await this.ctx.run(['systemctl', '--user', 'disable', '--now', `${name}.service`])
    rmSync(this.entryPath(name), { force: true })
    await this.systemctl('daemon-reload')
  }
}
