import { describe, expect, test } from 'bun:test'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { parsePlist, renderPlist } from '../src/service/launchd'
import { parseTaskXml, renderTaskXml, windowsQuote, windowsSplit } from '../src/service/schtasks'
import { parseUnit, renderUnit, systemdQuote, systemdSplit } from '../src/service/systemd'
import { ServiceError, type ServiceSpec } from '../src/service/types'

const spec: ServiceSpec = {
  name: 'xopcbot-gateway',
  description: 'xopcbot gateway',
  program: '/home/me/.xopcbot/bin/xopcbot',
  args: ['gateway', '--config', '/home/me/.xopcbot/config.json'],
  workingDirectory: '/home/me',
  env: { XOPCBOT_SERVICE_MARKER: 'systemd', XOPCBOT_ALLOW_SIGUSR1_RESTART: '1', PATH: '/usr/local/bin:/usr/bin:/bin' },
  stopTimeoutMs: 5000,
  logDir: '/home/me/.xopcbot/logs',
}

/** Values that break naive templating in each format. */
const nasty = ['/home/my user/odd "dir"', "100% it's", '$HOME & <tag>', 'back\\slash\\', 'tab\there']

describe('systemd unit', () => {
  test('golden', () => {
    expect(renderUnit(spec)).toBe(`[Unit]
Description=xopcbot gateway
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart="/home/me/.xopcbot/bin/xopcbot" "gateway" "--config" "/home/me/.xopcbot/config.json"
WorkingDirectory=/home/me
Environment="XOPCBOT_SERVICE_MARKER=systemd"
Environment="XOPCBOT_ALLOW_SIGUSR1_RESTART=1"
Environment="PATH=/usr/local/bin:/usr/bin:/bin"
Restart=on-failure
RestartSec=2
# 75: the gateway asks to be restarted (graceful restart); 65: its database is damaged, 78: the config is
# invalid; restarting cannot help those two.
RestartForceExitStatus=75
RestartPreventExitStatus=65 78
KillMode=mixed
TimeoutStopSec=15

[Install]
WantedBy=default.target
`)
  })

  test('escaping: quotes, backslashes, % and $ survive a round trip', () => {
    expect(systemdQuote('100%')).toBe('"100%%"')
    expect(systemdQuote('$HOME')).toBe('"$$HOME"')
    expect(systemdQuote('$HOME', { commandLine: false })).toBe('"$HOME"')
    expect(systemdQuote('say "hi"')).toBe('"say \\"hi\\""')
    for (const value of nasty) {
      expect(systemdSplit(systemdQuote(value))).toEqual([value])
      expect(systemdSplit(systemdQuote(value, { commandLine: false }), { commandLine: false })).toEqual([value])
    }
    const odd = { ...spec, program: nasty[0]!, args: nasty, workingDirectory: '/home/me/100%', env: { ODD: nasty.join('|') } }
    const parsed = parseUnit(renderUnit(odd))
    expect(parsed).toEqual({ program: nasty[0]!, args: nasty, workingDirectory: '/home/me/100%', env: { ODD: nasty.join('|') } })
  })

  test('a value with a newline is refused', () => {
    expect(() => renderUnit({ ...spec, args: ['gateway\nExecStartPre=/bin/rm -rf ~'] })).toThrow(ServiceError)
    expect(() => renderUnit({ ...spec, env: { X: 'a\rb' } })).toThrow(ServiceError)
  })
})

describe('launchd plist', () => {
  test('golden keys, parsed by a real XML parser', () => {
    const xml = renderPlist({ ...spec, name: 'ai.xopcbot.gateway' })
    expect(XMLValidator.validate(xml)).toBe(true)
    const plist = new XMLParser({ preserveOrder: false }).parse(xml).plist.dict
    expect(plist.key).toEqual(['Label', 'ProgramArguments', 'WorkingDirectory', 'EnvironmentVariables', 'RunAtLoad', 'KeepAlive', 'ThrottleInterval', 'ExitTimeOut', 'StandardOutPath', 'StandardErrorPath'])
    expect(plist.array.string).toEqual([spec.program, ...spec.args])
    expect(plist.integer).toEqual([5, 15])
    expect(xml).toContain('<key>RunAtLoad</key>\n    <true/>')
    expect(xml).toContain('<key>SuccessfulExit</key>\n      <false/>')
  })

  test('escaping & round trip', () => {
    const odd = { ...spec, program: nasty[2]!, args: nasty, workingDirectory: nasty[0]! }
    const xml = renderPlist(odd)
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toContain('$HOME &amp; &lt;tag&gt;')
    expect(parsePlist(xml)).toEqual({ program: nasty[2]!, args: nasty, workingDirectory: nasty[0]! })
    const parsed = new XMLParser({ processEntities: true }).parse(xml).plist.dict
    expect(parsed.array.string).toEqual([nasty[2], ...nasty])
  })

  test('a value with a newline is refused', () => {
    expect(() => renderPlist({ ...spec, workingDirectory: 'a\nb' })).toThrow(ServiceError)
  })
})

describe('Task Scheduler XML', () => {
  test('golden settings, parsed by a real XML parser', () => {
    const xml = renderTaskXml({ ...spec, program: 'C:\\Users\\me\\.xopcbot\\bin\\xopcbot.exe', args: ['gateway', '--config', 'C:\\Users\\me\\.xopcbot\\config.json'], workingDirectory: 'C:\\Users\\me', env: { XOPCBOT_SERVICE_MARKER: 'schtasks' } }, 'PC\\me')
    expect(XMLValidator.validate(xml)).toBe(true)
    const task = new XMLParser().parse(xml).Task
    expect(task.Triggers.LogonTrigger).toEqual({ Enabled: true, UserId: 'PC\\me' })
    expect(task.Principals.Principal).toMatchObject({ LogonType: 'InteractiveToken', RunLevel: 'LeastPrivilege' })
    expect(task.Settings).toMatchObject({ ExecutionTimeLimit: 'PT0S', Hidden: true, RestartOnFailure: { Interval: 'PT1M', Count: 999 } })
    expect(task.Actions.Exec.Command).toBe('C:\\Users\\me\\.xopcbot\\bin\\xopcbot.exe')
    expect(task.Actions.Exec.Arguments).toBe('gateway --config C:\\Users\\me\\.xopcbot\\config.json --service-marker schtasks')
  })

  test('Windows quoting round-trips through CommandLineToArgvW rules; the XML round-trips', () => {
    const values = ['plain', 'with space', 'quote"inside', 'trailing\\', 'C:\\Program Files\\x\\', '', 'a\\\\"b']
    for (const value of values) expect(windowsSplit(windowsQuote(value))).toEqual([value])
    const odd = { ...spec, program: 'C:\\odd & <dir>\\x.exe', args: values.filter(Boolean), workingDirectory: 'C:\\100% "here"' }
    const xml = renderTaskXml(odd, 'me')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(parseTaskXml(xml)).toEqual({ program: odd.program, args: odd.args, workingDirectory: odd.workingDirectory })
  })

  test('a value with a newline is refused', () => {
    expect(() => renderTaskXml({ ...spec, args: ['x\ny'] }, 'me')).toThrow(ServiceError)
  })
})
