import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { xmlEscape, xmlUnescape } from './launchd'
import { refuseNewlines, ServiceError, type ServiceContext, type ServiceManager, type ServiceSpec, type ServiceStatus } from './types'

/** One Windows command-line argument, quoted the way CommandLineToArgvW reads it back. */
export function windowsQuote(arg: string): string {
  if (arg !== '' && !/[\s"]/.test(arg)) return arg
  let out = '"'
  let backslashes = 0
  for (const char of arg) {
    if (char === '\\') backslashes++
    else if (char === '"') {
      out += '\\'.repeat(backslashes * 2 + 1) + '"'
      backslashes = 0
    } else {
      out += '\\'.repeat(backslashes) + char
      backslashes = 0
    }
  }
  return out + '\\'.repeat(backslashes * 2) + '"'
}

/** CommandLineToArgvW's reading of an argument string. */
export function windowsSplit(line: string): string[] {
  const args: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++
    if (i >= line.length) break
    let arg = ''
    let quoted = false
    for (; i < line.length; i++) {
      const char = line[i]!
      if (char === '\\') {
        let n = 0
        while (line[i] === '\\') {
          n++
          i++
        }
        if (line[i] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2))
          if (n % 2) arg += '"'
          else quoted = !quoted
        } else {
          arg += '\\'.repeat(n)
          i--
        }
      } else if (char === '"') quoted = !quoted
      else if (!quoted && (char === ' ' || char === '\t')) break
      else arg += char
    }
    args.push(arg)
  }
  return args
}

/**
 * The Task Scheduler definition (SPEC §9): at logon, least privilege, no time limit, restart on failure,
 * hidden. Task Scheduler has no per-task environment, so the service marker travels as a flag. Pure.
 * RestartOnFailure is about the task failing to run (its program could not be started), not about the exit
 * code the program returns: an exit of 65 (damaged data) or 78 (invalid config) is recorded as the task's last
 * result, which service-status shows as failed, and the task is not started again until the next logon.
 */
export function renderTaskXml(spec: ServiceSpec, user: string): string {
  refuseNewlines(spec)
  const args = [...spec.args, '--service-marker', spec.env.XOPCBOT_SERVICE_MARKER ?? 'schtasks'].map(windowsQuote).join(' ')
  return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>${xmlEscape(spec.description)}</Description>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>${xmlEscape(user)}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>${xmlEscape(user)}</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Hidden>true</Hidden>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>${xmlEscape(spec.program)}</Command>
      <Arguments>${xmlEscape(args)}</Arguments>
      <WorkingDirectory>${xmlEscape(spec.workingDirectory)}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
`
}

export function parseTaskXml(text: string): { program: string | null; args: string[]; workingDirectory: string | null } {
  const tag = (name: string) => {
    const value = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(text)?.[1]
    return value === undefined ? null : xmlUnescape(value)
  }
  const args = windowsSplit(tag('Arguments') ?? '')
  const marker = args.indexOf('--service-marker')
  return { program: tag('Command'), args: marker >= 0 ? args.slice(0, marker) : args, workingDirectory: tag('WorkingDirectory') }
}

/** Result codes of a task (not the localised text of schtasks /Query). */
const RUNNING = 0x41301
const READY = 0x41300
const NOT_YET_RUN = 0x41303

/** Windows Task Scheduler (`schtasks`). */
export class SchtasksManager implements ServiceManager {
  readonly kind = 'schtasks' as const

  constructor(private readonly ctx: ServiceContext) {}

  entryPath(name: string) {
    return `\\${name}`
  }

  private async schtasks(args: string[]) {
    const result = await this.ctx.run(['schtasks', ...args])
    if (result.code !== 0) {
      const detail = (result.stderr || result.stdout).trim()
      const hint = /access is denied/i.test(detail) ? ' (Task Scheduler refused it: run the command as the user the task is for, without elevation mismatches)' : ''
      throw new ServiceError(`schtasks ${args[0]} failed (exit ${result.code}): ${detail || 'no output'}${hint}`)
    }
    return result
  }

  async unavailable() {
    const probe = await this.ctx.run(['schtasks', '/Query', '/FO', 'CSV', '/NH', '/TN', '\\Microsoft\\Windows\\Time Synchronization\\SynchronizeTime'])
    if (probe.code === 127) return 'schtasks was not found; Task Scheduler needs Windows.'
    return null
  }

  async install(spec: ServiceSpec, { start }: { start: boolean }) {
    const dir = mkdtempSync(join(tmpdir(), 'xopcbot-task-'))
    const file = join(dir, 'task.xml')
    try {
      // Task Scheduler reads task XML as UTF-16 (with a byte order mark).
      writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(renderTaskXml(spec, this.ctx.user), 'utf16le')]))
      await this.schtasks(['/Create', '/TN', spec.name, '/XML', file, '/F'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    if (start) await this.schtasks(['/Run', '/TN', spec.name])
    return []
  }

  async start(name: string) {
    await this.schtasks(['/Run', '/TN', name])
  }

  async stop(name: string) {
    await this.schtasks(['/End', '/TN', name])
  }

  async status(name: string): Promise<ServiceStatus> {
    const xml = await this.ctx.run(['schtasks', '/Query', '/TN', name, '/XML'])
    if (xml.code !== 0) return { installed: false, state: 'not-installed', pid: null, program: null, args: [], workingDirectory: null, file: null }
    const parsed = parseTaskXml(xml.stdout)
    const csv = await this.ctx.run(['schtasks', '/Query', '/TN', name, '/FO', 'CSV', '/NH', '/V'])
    // The columns are localised text except the numbers: "Last Result" is the 7th field.
    const fields = [...(csv.stdout.split(/\r?\n/).find(Boolean) ?? '').matchAll(/"([^"]*)"/g)].map((m) => m[1]!)
    const code = Number(fields[6])
    const state: ServiceStatus['state'] = code === RUNNING ? 'running' : code === READY || code === NOT_YET_RUN || code === 0 ? 'stopped' : Number.isFinite(code) ? 'failed' : 'unknown'
    return { installed: true, state, pid: null, program: parsed.program, args: parsed.args, workingDirectory: parsed.workingDirectory, file: this.entryPath(name), detail: `last result 0x${code.toString(16)}` }
  }

  async uninstall(name: string) {
    await this.ctx.run(['schtasks', '/End', '/TN', name])
    await this.schtasks(['/Delete', '/TN', name, '/F'])
  }
}
