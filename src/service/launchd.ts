import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../util/atomic-write'
import { readEntry, refuseNewlines, ServiceError, type ServiceContext, type ServiceManager, type ServiceSpec, type ServiceStatus } from './types'

export function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
}

export function xmlUnescape(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')
}

/**
 * The LaunchAgent plist (SPEC §9). Pure. KeepAlive {SuccessfulExit: false} starts the job again after any
 * non-zero exit; launchd has no list of exit codes not to restart on (systemd's RestartPreventExitStatus), so
 * the gateway itself exits 0 under launchd when restarting cannot help (damaged data, invalid config; see
 * underLaunchd in cli/gateway.ts).
 */
export function renderPlist(spec: ServiceSpec): string {
  refuseNewlines(spec)
  const string = (value: string) => `<string>${xmlEscape(value)}</string>`
  const env = Object.entries(spec.env)
    .map(([k, v]) => `      <key>${xmlEscape(k)}</key>\n      ${string(v)}`)
    .join('\n')
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
  <dict>
    <key>Label</key>
    ${string(spec.name)}
    <key>ProgramArguments</key>
    <array>
${[spec.program, ...spec.args].map((a) => `      ${string(a)}`).join('\n')}
    </array>
    <key>WorkingDirectory</key>
    ${string(spec.workingDirectory)}
    <key>EnvironmentVariables</key>
    <dict>
${env}
    </dict>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <dict>
      <key>SuccessfulExit</key>
      <false/>
    </dict>
    <key>ThrottleInterval</key>
    <integer>5</integer>
    <key>ExitTimeOut</key>
    <integer>${Math.ceil(spec.stopTimeoutMs / 1000) + 10}</integer>
    <key>StandardOutPath</key>
    ${string(join(spec.logDir, `${spec.name}.out.log`))}
    <key>StandardErrorPath</key>
    ${string(join(spec.logDir, `${spec.name}.err.log`))}
  </dict>
</plist>
`
}

/** Reads back ProgramArguments and WorkingDirectory. */
export function parsePlist(text: string): { program: string | null; args: string[]; workingDirectory: string | null } {
  const args = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(text)?.[1] ?? ''
  const words = [...args.matchAll(/<string>([\s\S]*?)<\/string>/g)].map((m) => xmlUnescape(m[1]!))
  const wd = /<key>WorkingDirectory<\/key>\s*<string>([\s\S]*?)<\/string>/.exec(text)?.[1]
  return { program: words[0] ?? null, args: words.slice(1), workingDirectory: wd === undefined ? null : xmlUnescape(wd) }
}

/** macOS LaunchAgents (`launchctl bootstrap/bootout gui/$UID`). */
export class LaunchdManager implements ServiceManager {
  readonly kind = 'launchd' as const

  constructor(private readonly ctx: ServiceContext) {}

  entryPath(name: string) {
    return join(this.ctx.homeDir, 'Library', 'LaunchAgents', `${name}.plist`)
  }

  private domain() {
    return `gui/${this.ctx.uid}`
  }

  private async launchctl(args: string[], okCodes: number[] = [0]) {
    const result = await this.ctx.run(['launchctl', ...args])
    if (!okCodes.includes(result.code)) {
      const detail = (result.stderr || result.stdout).trim()
      const hint = result.code === 5 || /Input\/output error/.test(detail) ? ' (launchd refused it: often a plist error, or the job is already loaded; see: launchctl print ' + `${this.domain()}/…)` : ''
      throw new ServiceError(`launchctl ${args.join(' ')} failed (exit ${result.code}): ${detail || 'no output'}${hint}`)
    }
    return result
  }

  async unavailable() {
    const probe = await this.ctx.run(['launchctl', 'print', this.domain()])
    if (probe.code === 127) return 'launchctl was not found; LaunchAgents need macOS.'
    if (probe.code !== 0) return `the GUI launchd domain ${this.domain()} is not available (are you logged in at the Mac, not only over SSH?): ${(probe.stderr || probe.stdout).trim().split('\n')[0]}`
    return null
  }

  async install(spec: ServiceSpec, { start }: { start: boolean }) {
    const file = this.entryPath(spec.name)
    mkdirSync(dirname(file), { recursive: true })
    mkdirSync(spec.logDir, { recursive: true })
    // Re-running install: take the old definition out first; "not loaded" (3, 5 or 113) is fine.
    await this.ctx.run(['launchctl', 'bootout', `${this.domain()}/${spec.name}`])
    writeFileAtomic(file, renderPlist(spec), { mode: 0o644 })
    await this.launchctl(['enable', `${this.domain()}/${spec.name}`])
    if (start) await this.launchctl(['bootstrap', this.domain(), file])
    return []
  }

  async start(name: string) {
    const loaded = await this.ctx.run(['launchctl', 'print', `${this.domain()}/${name}`])
    if (loaded.code === 0) await this.launchctl(['kickstart', `${this.domain()}/${name}`])
    else await this.launchctl(['bootstrap', this.domain(), this.entryPath(name)])
  }

  async stop(name: string) {
    await this.launchctl(['bootout', `${this.domain()}/${name}`], [0, 3, 5, 113])
  }

  async status(name: string): Promise<ServiceStatus> {
    const file = this.entryPath(name)
    const text = readEntry(file)
    const parsed = text ? parsePlist(text) : { program: null, args: [], workingDirectory: null }
    const printed = await this.ctx.run(['launchctl', 'print', `${this.domain()}/${name}`])
    const stateText = /^\s*state = (.+)$/m.exec(printed.stdout)?.[1]?.trim()
    const pid = Number(/^\s*pid = (\d+)$/m.exec(printed.stdout)?.[1] ?? 0) || null
    const state: ServiceStatus['state'] = !text ? 'not-installed' : printed.code !== 0 ? 'stopped' : stateText === 'running' ? 'running' : stateText === 'spawn scheduled' ? 'starting' : 'stopped'
    return { installed: !!text, state, pid, program: parsed.program, args: parsed.args, workingDirectory: parsed.workingDirectory, file: text ? file : null, ...(stateText ? { detail: stateText } : {}) }
  }

  async uninstall(name: string) {
    await this.stop(name)
    rmSync(this.entryPath(name), { force: true })
  }
}
