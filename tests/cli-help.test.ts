import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { closest } from '../src/cli/args'
import { colorEnabled } from '../src/cli/output'
import { childEnv, ENTRY, runCli, tempHome } from './helpers/gateway'
import { waitFor } from './helpers/wait'

const ESC = '\x1b['
const VERSION = ((await Bun.file(join(import.meta.dir, '..', 'package.json')).json()) as { version: string }).version
// The child must decide about colour by itself: nothing in the environment that turns it off already (citty,
// for one, turns it off under CI or TEST).
const colourNeutral = { NO_COLOR: '', CI: '', TEST: '', TERM: 'xterm-256color' }

/** Runs the CLI on a pseudo-terminal (a real TTY) and returns what it printed once `until` appears. */
async function runOnTerminal(args: string[], env: Record<string, string>, until: string): Promise<{ code: number; output: string }> {
  let output = ''
  const decoder = new TextDecoder()
  const terminal = new Bun.Terminal({ cols: 400, rows: 100, data: (_, data) => void (output += decoder.decode(data, { stream: true })) })
  try {
    const proc = Bun.spawn([process.execPath, ENTRY, ...args], { terminal, env: childEnv(tempHome(), env) })
    const code = await proc.exited
    await waitFor(() => output.includes(until), { what: `"${until}" on the terminal` })
    return { code, output }
  } finally {
    terminal.close()
  }
}

describe('colour', () => {
  test('the rule: FORCE_COLOR, then NO_COLOR, then TERM=dumb, then whether the stream is a terminal', () => {
    const tty = { isTTY: true }
    const pipe = { isTTY: false }
    expect(colorEnabled(tty, {})).toBe(true)
    expect(colorEnabled(pipe, {})).toBe(false)
    expect(colorEnabled(tty, { NO_COLOR: '1' })).toBe(false)
    expect(colorEnabled(tty, { NO_COLOR: '' })).toBe(true)
    expect(colorEnabled(tty, { TERM: 'dumb' })).toBe(false)
    expect(colorEnabled(pipe, { FORCE_COLOR: '1' })).toBe(true)
    expect(colorEnabled(pipe, { FORCE_COLOR: '' })).toBe(true)
    expect(colorEnabled(tty, { FORCE_COLOR: '0' })).toBe(false)
    expect(colorEnabled(tty, { FORCE_COLOR: 'false' })).toBe(false)
    expect(colorEnabled(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(true)
  })

  test('--help into a pipe is plain text; FORCE_COLOR colours it', async () => {
    for (const args of [['--help'], ['gateway', '--help'], ['cron', 'rm', '--help']]) {
      const piped = await runCli(args, { env: colourNeutral })
      expect(piped.code).toBe(0)
      expect(piped.stdout).toContain('USAGE')
      expect(piped.stdout).not.toContain(ESC)
    }
    const forced = await runCli(['gateway', '--help'], { env: { ...colourNeutral, FORCE_COLOR: '1' } })
    expect(forced.stdout).toContain(`${ESC}36m`)
  })

  test('--help on a terminal is coloured, unless NO_COLOR or FORCE_COLOR=0 says otherwise', async () => {
    const end = 'for more information about a command'
    const coloured = await runOnTerminal(['--help'], colourNeutral, end)
    expect(coloured.code).toBe(0)
    expect(coloured.output).toContain(`${ESC}36m`)
    for (const off of [{ NO_COLOR: '1' }, { FORCE_COLOR: '0' }] as Record<string, string>[]) {
      const plain = await runOnTerminal(['--help'], { ...colourNeutral, ...off }, end)
      expect(plain.output).toContain('USAGE')
      expect(plain.output).not.toContain(ESC)
    }
  })
})

describe('help text', () => {
  test('usage lines name the program and the whole command', async () => {
    for (const words of [['gateway', 'status'], ['cron', 'list'], ['config', 'get'], ['pairing', 'approve'], ['doctor']]) {
      const { stdout, code } = await runCli([...words, '--help'])
      expect(code).toBe(0)
      expect(stdout).toMatch(new RegExp(`^USAGE xopcbot ${words.join(' ')}( |$)`, 'm'))
      expect(stdout).toContain(`(xopcbot ${words.join(' ')} v${VERSION})`)
      expect(stdout).not.toMatch(/[ \t]$/m)
    }
  })

  test('internal flags are not listed, and still work', async () => {
    const { stdout } = await runCli(['gateway', '--help'])
    expect(stdout).toContain('--force')
    expect(stdout).not.toContain('service-marker')
    // Accepted: the error is about the bad port, not an unknown option.
    const accepted = await runCli(['gateway', '--service-marker', 'systemd', '--port', 'abc'])
    expect(accepted.code).toBe(2)
    expect(accepted.stderr).toContain('--port: must be a whole number')
  })

  test('a flag that is on by default is listed once, as the way to turn it off', async () => {
    const { stdout } = await runCli(['gateway', 'install', '--help'])
    expect(stdout).toMatch(/--no-start +Install without starting/)
    expect(stdout).not.toMatch(/--start\b/)
    expect(stdout).not.toContain('(Default: true)')
  })

  // Every command whose arguments are required: the help says <NAME>, and leaving them out is a usage error.
  const required: [string[], string[]][] = [
    [['cron', 'rm'], ['<ID>']],
    [['cron', 'toggle'], ['<ID>']],
    [['cron', 'run'], ['<ID>']],
    [['pairing', 'approve'], ['<CODE>']],
    [['pairing', 'revoke'], ['<CHANNEL>', '<SENDER>']],
    [['mcp', 'call'], ['<SERVER>', '<TOOL>']],
    [['config', 'set'], ['<KEY>', '<VALUE>']],
    [['config', 'unset'], ['<KEY>']],
    [['restore'], ['<FILE>']],
  ]
  for (const [words, shown] of required) {
    test(`xopcbot ${words.join(' ')}: required arguments show as required`, async () => {
      const help = await runCli([...words, '--help'])
      for (const name of shown) expect(help.stdout).toContain(` ${name}`)
      expect(help.stdout).not.toMatch(/\[(?!OPTIONS\])[A-Z]+\]/)
      const without = await runCli(words)
      expect(without.code).toBe(2)
      expect(without.stderr).not.toContain('Missing required')
    })
  }

  test('every command of the tree (walked from the CLI itself): help and --help agree, plain, complete, exit 0', async () => {
    const { root } = await import('../src/cli/index')
    const resolved = async <T>(value: T | (() => T | Promise<T>)): Promise<T> => (typeof value === 'function' ? (value as () => T | Promise<T>)() : value)
    const commands: string[][] = []
    const walk = async (command: typeof root, words: string[]): Promise<void> => {
      commands.push(words)
      for (const [name, sub] of Object.entries((await resolved(command.subCommands)) ?? {})) await walk((await resolved(sub)) as typeof root, [...words, name])
    }
    await walk(root, [])
    expect(commands.length).toBeGreaterThan(30)
    const failures: string[] = []
    // A few at a time: each is a process.
    for (let i = 0; i < commands.length; i += 6) {
      await Promise.all(
        commands.slice(i, i + 6).map(async (words) => {
          const name = ['xopcbot', ...words].join(' ')
          const [viaHelp, viaFlag] = await Promise.all([runCli(['help', ...words], { env: colourNeutral }), runCli([...words, '--help'], { env: colourNeutral })])
          const problems = [
            viaHelp.code !== 0 && `help exits ${viaHelp.code}: ${viaHelp.stderr.trim()}`,
            viaFlag.code !== 0 && `--help exits ${viaFlag.code}: ${viaFlag.stderr.trim()}`,
            viaHelp.stdout !== viaFlag.stdout && 'help and --help differ',
            viaHelp.stdout.includes('\x1b') && 'escape codes in a pipe',
            !new RegExp(`^USAGE ${name}( |$)`, 'm').test(viaHelp.stdout) && 'no usage line that names it',
            !new RegExp(`^\\S.* \\(${name} v${VERSION.replaceAll('.', '\\.')}\\)$`, 'm').test(viaHelp.stdout) && 'no description',
            /undefined|\[object/.test(viaHelp.stdout) && 'undefined or [object] in the text',
            /[ \t]$/m.test(viaHelp.stdout) && 'a line ends in blanks',
            viaHelp.stdout.includes('service-marker') && 'a hidden flag is listed',
            viaHelp.stderr !== '' && `stderr: ${viaHelp.stderr.trim()}`,
          ].filter(Boolean)
          for (const problem of problems) failures.push(`${name}: ${problem}`)
        }),
      )
    }
    expect(failures).toEqual([])
  }, 120_000)

  test('an optional argument stays optional; required flags are in the usage line', async () => {
    expect((await runCli(['config', 'get', '--help'])).stdout).toContain('USAGE xopcbot config get [OPTIONS] [KEY]')
    const add = await runCli(['cron', 'add', '--help'])
    expect(add.stdout).toContain('USAGE xopcbot cron add [OPTIONS] --schedule=<expr> --message=<text>')
    expect(add.stdout).toMatch(/--schedule=<expr> +.*\(Required\)/)
  })
})

describe('did you mean', () => {
  test('a letter missing, extra, wrong or two swapped; a unique beginning; nothing far off', () => {
    const commands = ['gateway', 'cron', 'pairing', 'usage', 'mcp', 'config', 'doctor', 'help', 'version']
    expect(closest('gatway', commands)).toBe('gateway')
    expect(closest('gatwy', commands)).toBe('gateway')
    expect(closest('confgi', commands)).toBe('config')
    expect(closest('mpc', commands)).toBe('mcp')
    expect(closest('doc', commands)).toBe('doctor')
    expect(closest('stauts', ['status', 'stop', 'restart'])).toBe('status')
    expect(closest('prot', ['port', 'host', 'token'])).toBe('port')
    expect(closest('frobnicate', commands)).toBeUndefined()
    expect(closest('xyz', commands)).toBeUndefined()
  })

  const typos: [string[], string][] = [
    [['gatway'], 'unknown command "gatway"; did you mean "gateway"?'],
    [['gateway', 'stauts'], 'unknown command "gateway stauts"; did you mean "gateway status"?'],
    [['gateway', '--prot', '1'], 'unknown option --prot; did you mean --port?'],
    [['cron', 'lst'], 'unknown command "cron lst"; did you mean "cron list"?'],
    [['gateway', 'logs', '--fol'], 'unknown option --fol; did you mean --follow?'],
    [['verison'], 'unknown command "verison"; did you mean "version"?'],
    [['gatway', '--help'], 'unknown command "gatway"; did you mean "gateway"?'],
    // A long name after one dash is a run of one-letter flags to the parser, a one-letter name after two dashes
    // no short flag: both refused, not run without them (`gateway -force`, `gateway --h` started the gateway).
    [['gateway', 'stop', '-force'], 'unknown option -force; did you mean --force?'],
    [['gateway', 'status', '-config', 'x.json'], 'unknown option -config; did you mean --config?'],
    [['gateway', 'status', '--h'], 'unknown option --h\n'],
    [['gateway', 'status', '-j'], 'unknown option -j\n'],
  ]
  for (const [args, message] of typos) {
    test(`xopcbot ${args.join(' ')}`, async () => {
      const result = await runCli(args)
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(message)
    })
  }

  test('nothing is suggested when nothing is close', async () => {
    const result = await runCli(['gateway', '--frobnicate'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('unknown option --frobnicate\n')
    expect(result.stderr).toContain('Run "xopcbot gateway --help" for usage.')
  })
})

describe('negative numbers as flag values', () => {
  const cases: [string[], string][] = [
    [['gateway', 'logs', '--lines', '-5'], '--lines: must be a whole number from 1 to 100000 (got "-5")'],
    [['gateway', 'stop', '--timeout', '-1'], '--timeout: must be a whole number of milliseconds from 0 to 600000 (got "-1")'],
    [['doctor', '--timeout', '-1'], '--timeout: must be a whole number of milliseconds from 100 to 60000 (got "-1")'],
    [['gateway', '--port', '-1'], '--port: must be a whole number from 1 to 65535 (got "-1")'],
  ]
  for (const [args, message] of cases) {
    test(`xopcbot ${args.join(' ')}`, async () => {
      const result = await runCli(args)
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(message)
      expect(result.stderr).not.toContain('unknown option')
    })
  }
})

describe('help and version commands', () => {
  test('xopcbot help [command] prints that help and exits 0', async () => {
    const root = await runCli(['help'])
    expect(root.code).toBe(0)
    expect(root.stdout).toContain('USAGE xopcbot [OPTIONS]')
    expect(root.stdout).toMatch(/^ +help +Show the help of a command/m)
    const viaHelp = await runCli(['help', 'cron', 'rm'])
    expect(viaHelp.code).toBe(0)
    expect(viaHelp.stdout).toBe((await runCli(['cron', 'rm', '--help'])).stdout)
  })

  test('xopcbot help with an unknown command: did you mean, exit 2', async () => {
    const result = await runCli(['help', 'gatwy'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('unknown command "gatwy"; did you mean "gateway"?')
    expect((await runCli(['help', 'cron', 'lst'])).stderr).toContain('did you mean "cron list"?')
  })

  test('--help=… is help too, not a flag the command ignores and runs', async () => {
    const result = await runCli(['gateway', 'status', '--help=yes'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^USAGE xopcbot gateway status /m)
  })

  test('xopcbot version and -V print the version', async () => {
    for (const args of [['version'], ['-V'], ['--version'], ['-v']]) {
      const result = await runCli(args)
      expect(result.code).toBe(0)
      expect(result.stdout.trim()).toBe(VERSION)
    }
    expect((await runCli(['version', 'extra'])).code).toBe(2)
  })
})
