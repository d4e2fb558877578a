import { describe, expect, spyOn, test } from 'bun:test'
import Ajv from 'ajv'
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkConfig } from '../src/cli/config/check'
import { applyToGateway, listenerOf } from '../src/cli/config/reload'
import { maskToken } from '../src/cli/output'
import { diffConfig } from '../src/config/reload'
import { findGateway } from '../src/lifecycle/control'
import { ExitCode } from '../src/errors'
import { configPathOf, freePort, ROOT, runCli, startGateway, tempHome, writeConfig } from './helpers/gateway'
import { waitFor } from './helpers/wait'

const isPosix = process.platform !== 'win32'
const modeOf = (path: string) => statSync(path).mode & 0o777

/** A hand-written config: three lines, its own spacing, and a ${VAR} that is not set in the CLI's environment. */
const HAND_WRITTEN = '{ "gateway": { "host": "127.0.0.1", "port": 18790 },\n  "channels": {"telegram": {"enabled": true, "token": "${TG_TOKEN}"}},\n  "agent": {"model": "openai/gpt-4o-mini"} }\n'

function handWritten(text = HAND_WRITTEN) {
  const home = tempHome()
  const path = writeConfig(home, text)
  return { home, path, read: () => readFileSync(path, 'utf8') }
}

describe('config set', () => {
  test('changes only the value in a hand-written file: same lines, same order, ${VAR} untouched, mode 0600', async () => {
    const { home, read, path } = handWritten()
    const result = await runCli(['config', 'set', 'agent.model', 'anthropic/claude-sonnet-4-5'], { home })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`✅ agent.model = "anthropic/claude-sonnet-4-5" (${path})`)
    expect(result.stdout).toContain('The gateway is not running; the change applies when it starts.')
    expect(read()).toBe(HAND_WRITTEN.replace('openai/gpt-4o-mini', 'anthropic/claude-sonnet-4-5'))
    if (isPosix) expect(modeOf(path)).toBe(0o600)

    // A new key: at the end of its object, in the spacing of its siblings; the file stays three lines.
    expect((await runCli(['config', 'set', 'agent.maxSteps', '12'], { home })).code).toBe(0)
    expect(read()).toBe(HAND_WRITTEN.replace('{"model": "openai/gpt-4o-mini"}', '{"model": "anthropic/claude-sonnet-4-5", "maxSteps": 12}'))
    expect(read().trimEnd().split('\n')).toHaveLength(3)
  })

  test('--json takes lists and objects; without it a number or boolean is coerced only where the key takes no string', async () => {
    const { home, read } = handWritten()
    expect((await runCli(['config', 'set', 'channels.telegram.allowFrom', '[123, "@me"]', '--json'], { home })).code).toBe(0)
    expect((await runCli(['config', 'set', 'agent.webFetch.allowPrivate', 'true'], { home })).code).toBe(0)
    expect((await runCli(['config', 'set', 'agent.systemPrompt', '42'], { home })).code).toBe(0)
    expect((await runCli(['config', 'set', 'channels.telegram.allowFrom[2]', '456'], { home })).code).toBe(0)
    const written = JSON.parse(read())
    expect(written.channels.telegram.allowFrom).toEqual([123, '@me', '456'])
    expect(written.agent.webFetch.allowPrivate).toBe(true)
    expect(written.agent.systemPrompt).toBe('42')
    expect(written.channels.telegram.token).toBe('${TG_TOKEN}')
  })

  test('an invalid value is refused with the key and the problem, and nothing is written', async () => {
    const { home, read, path } = handWritten()
    const inode = statSync(path).ino
    const cases: [string[], string][] = [
      [['agent.maxSteps', '500'], 'agent.maxSteps: '],
      [['gateway.port', 'abc'], 'gateway.port: '],
      [['agent.modle', 'x/y'], 'agent.modle: unknown key'],
      [['agent.tools', '["time"]'], 'agent.tools: must be an array (to give a list or an object, add --json)'],
      [['channels.telegram.token', 'null', '--json'], 'channels.telegram.token: is required when the channel is enabled'],
      [['agent.model.primary', 'a/b'], 'agent.model is a string, so it has no "primary"'],
    ]
    for (const [args, message] of cases) {
      const result = await runCli(['config', 'set', ...args], { home })
      expect(result.code).toBe(ExitCode.FAILURE)
      expect(result.stderr).toContain(message)
      expect(result.stderr).toContain(`${path} was not changed`)
    }
    const badJson = await runCli(['config', 'set', 'agent.tools', '[time', '--json'], { home })
    expect(badJson.code).toBe(ExitCode.USAGE)
    expect(badJson.stderr).toContain('--json: the value is not valid JSON')
    expect(read()).toBe(HAND_WRITTEN)
    expect(statSync(path).ino).toBe(inode)
  })

  test('a file that is not JSON is not touched', async () => {
    const { home, read, path } = handWritten('{ "agent": { "model": "a/b", } }')
    const result = await runCli(['config', 'set', 'agent.maxSteps', '3'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain(`Invalid config ${path}: it contains comments or trailing commas`)
    expect(read()).toBe('{ "agent": { "model": "a/b", } }')
  })

  test('a problem the file already has elsewhere does not stop a change (fix one key at a time), and is listed', async () => {
    const { home, read } = handWritten('{"gateway": {"port": "abc"}, "agent": {"maxSteps": 500}}')
    const fix = await runCli(['config', 'set', 'agent.maxSteps', '5'], { home })
    expect(fix.code).toBe(0)
    expect(fix.stderr).toContain('still has a problem elsewhere')
    expect(fix.stderr).toContain('gateway.port: ')
    expect(read()).toBe('{"gateway": {"port": "abc"}, "agent": {"maxSteps": 5}}')
  })

  test.skipIf(!isPosix)('a missing file is created 0600 in a 0700 directory; --config and XOPCBOT_CONFIG choose it; a symlink stays a link', async () => {
    const home = tempHome()
    const path = join(home, 'new-dir', 'my-config.json')
    expect((await runCli(['config', 'path', '--config', path], { home })).stdout.trim()).toBe(path)
    expect((await runCli(['config', 'path'], { home, env: { XOPCBOT_CONFIG: path } })).stdout.trim()).toBe(path)
    expect((await runCli(['config', 'path'], { home })).stdout.trim()).toBe(configPathOf(home))

    const result = await runCli(['config', 'set', 'providers.openai.apiKey', 'sk-abcdefghijklmnopqrstuvwxyz', '--config', path], { home })
    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain('sk-abcdefghijklmnopqrstuvwxyz')
    expect(readFileSync(path, 'utf8')).toBe('{\n  "providers": {\n    "openai": {\n      "apiKey": "sk-abcdefghijklmnopqrstuvwxyz"\n    }\n  }\n}\n')
    expect(modeOf(path)).toBe(0o600)
    expect(modeOf(join(home, 'new-dir'))).toBe(0o700)

    expect((await runCli(['config', 'set', 'agent.maxSteps', '3'], { home, env: { XOPCBOT_CONFIG: path } })).code).toBe(0)
    expect(JSON.parse(readFileSync(path, 'utf8')).agent).toEqual({ maxSteps: 3 })

    const link = join(home, 'link.json')
    symlinkSync(path, link)
    expect((await runCli(['config', 'set', 'agent.maxSteps', '4', '--config', link], { home })).code).toBe(0)
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    expect(JSON.parse(readFileSync(path, 'utf8')).agent).toEqual({ maxSteps: 4 })
  })
})

describe('config unset', () => {
  test('removes the key with its separator; a key that is not there changes nothing', async () => {
    const { home, read } = handWritten()
    const result = await runCli(['config', 'unset', 'gateway.port'], { home })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Removed gateway.port; its default applies: 18790')
    expect(read()).toBe(HAND_WRITTEN.replace(', "port": 18790', ''))
    const again = await runCli(['config', 'unset', 'gateway.port'], { home })
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('gateway.port is not in the config file; nothing was changed.')
    expect(read()).toBe(HAND_WRITTEN.replace(', "port": 18790', ''))
    // A key that must be there is not removed.
    const required = await runCli(['config', 'unset', 'channels.telegram.token'], { home })
    expect(required.code).toBe(ExitCode.FAILURE)
    expect(required.stderr).toContain('channels.telegram.token: is required when the channel is enabled')
  })
})

describe('config get', () => {
  const SECRETS = {
    gateway: { auth: { token: 'gateway-token-0123456789' } },
    providers: { openai: { apiKey: 'sk-live-abcdefghijklmnop', headers: { 'X-Org': 'org-value-abcdefghij' } } },
    channels: { hook: { type: 'webhook', url: 'https://example.com/in', secret: 'webhook-secret-0123456789' } },
    mcp: {
      servers: {
        files: {
          command: 'files-server',
          args: ['--token', 'arg-token-abcdefghij', '--api-key=arg-key-abcdefghij', '--verbose'],
          env: { GITHUB_TOKEN: 'ghp_abcdefghijklmnop', GH_PAT: 'pat-value-abcdefghij', DATABASE_URL: 'postgres://app:db-pass-abcdefghij@db/app', LOG_LEVEL: 'warn' },
        },
      },
    },
    agent: { systemPrompt: 'Never say sk-live-abcdefghijklmnop.', budget: { dailyTokens: 5000 } },
  }
  const secretValues = ['gateway-token-0123456789', 'sk-live-abcdefghijklmnop', 'org-value-abcdefghij', 'webhook-secret-0123456789', 'ghp_abcdefghijklmnop', 'arg-token-abcdefghij', 'arg-key-abcdefghij', 'pat-value-abcdefghij', 'db-pass-abcdefghij']

  test('prints a value (text as it is, objects as JSON); the whole file with every secret masked', async () => {
    const home = tempHome()
    writeConfig(home, JSON.stringify(SECRETS, null, 2))
    expect((await runCli(['config', 'get', 'channels.hook.url'], { home })).stdout).toBe('https://example.com/in\n')
    expect((await runCli(['config', 'get', 'channels.hook.url', '--json'], { home })).stdout).toBe('"https://example.com/in"\n')
    expect(JSON.parse((await runCli(['config', 'get', 'agent.budget'], { home })).stdout)).toEqual({ dailyTokens: 5000 })

    const whole = await runCli(['config', 'get'], { home })
    expect(whole.code).toBe(0)
    for (const secret of secretValues) expect(whole.stdout).not.toContain(secret)
    const shown = JSON.parse(whole.stdout)
    expect(shown.gateway.auth.token).toBe(maskToken('gateway-token-0123456789'))
    expect(shown.mcp.servers.files.env.LOG_LEVEL).toBe('warn')
    expect(shown.agent.budget.dailyTokens).toBe(5000)
    expect(shown.agent.systemPrompt).toBe('Never say [REDACTED].')
    expect((await runCli(['config', 'get', 'providers.openai.headers'], { home })).stdout).not.toContain('org-value-abcdefghij')
    expect((await runCli(['config', 'get', 'gateway.auth.token'], { home })).stdout).not.toContain('gateway-token-0123456789')
    // One entry of a list is masked as in the whole file: the value after `--token` is a credential.
    expect((await runCli(['config', 'get', 'mcp.servers.files.args[1]'], { home })).stdout).toBe(`${maskToken('arg-token-abcdefghij')}\n`)
    expect(shown.mcp.servers.files.args).toEqual(['--token', maskToken('arg-token-abcdefghij'), `--api-key=${maskToken('arg-key-abcdefghij')}`, '--verbose'])
    expect(shown.mcp.servers.files.env.DATABASE_URL).toBe(`postgres://app:${maskToken('db-pass-abcdefghij')}@db/app`)

    const revealed = await runCli(['config', 'get', '--show-secrets'], { home })
    for (const secret of secretValues) expect(revealed.stdout).toContain(secret)
  })

  test('a key that is not set prints its default; one that is not a config key is an error', async () => {
    const { home } = handWritten()
    const port = await runCli(['config', 'get', 'agent.maxSteps'], { home })
    expect(port.stdout).toBe('8\n')
    expect(port.stderr).toContain('agent.maxSteps is not set in')
    const unknown = await runCli(['config', 'get', 'agent.modle'], { home })
    expect(unknown.code).toBe(ExitCode.FAILURE)
    expect(unknown.stderr).toContain('agent.modle is not a config key')
    // The reference as written: a ${VAR} is not substituted, and holds no secret.
    expect((await runCli(['config', 'get', 'channels.telegram.token'], { home })).stdout).toBe('${TG_TOKEN}\n')
  })
})

describe('config validate', () => {
  test('config ok, or every problem as <key path>: <message> and exit 1', async () => {
    const { home, path } = handWritten()
    const unset = await runCli(['config', 'validate'], { home })
    expect(unset.code).toBe(ExitCode.FAILURE)
    expect(unset.stdout).toBe('channels.telegram.token: environment variable TG_TOKEN is not set\n')

    const ok = await runCli(['config', 'validate'], { home, env: { TG_TOKEN: '123:abc' } })
    expect(ok.code).toBe(0)
    expect(ok.stdout).toBe(`config ok: ${path}\n`)

    writeConfig(home, '{"gateway": {"port": 0, "hots": "x"}, "agent": {"maxSteps": "many"}}')
    const bad = await runCli(['config', 'validate'], { home })
    expect(bad.code).toBe(ExitCode.FAILURE)
    const lines = bad.stdout.trim().split('\n')
    expect(lines).toContain('gateway.port: must be from 1 to 65535')
    expect(lines).toContain('gateway.hots: unknown key')
    expect(lines.some((line) => line.startsWith('agent.maxSteps: '))).toBe(true)
  })
})

describe('config schema', () => {
  test('is a JSON Schema that accepts valid configs (with "$schema") and refuses what the gateway refuses', async () => {
    const result = await runCli(['config', 'schema'])
    expect(result.code).toBe(0)
    const schema = JSON.parse(result.stdout)
    const validate = new Ajv({ strict: false, validateFormats: false }).compile(schema)
    const good = {
      $schema: './config.schema.json',
      gateway: { port: 8080 },
      agent: { model: { primary: 'openai/gpt-4o-mini', fallbacks: ['anthropic/claude-sonnet-4-5'] } },
      channels: { telegram: { enabled: false, allowFrom: [123] }, hook: { type: 'webhook', url: 'https://example.com', secret: 'a-secret-of-16-chars' } },
      mcp: { servers: { files: { command: 'npx', args: ['-y', 'server'] }, search: { url: 'https://mcp.example.com/mcp' } } },
    }
    expect(validate(good)).toBe(true)
    expect(validate({ gateway: { hots: 'x' } })).toBe(false)
    expect(validate({ gateway: { port: 'abc' } })).toBe(false)
    expect(validate({ agent: { maxSteps: 500 } })).toBe(false)

    // The file with "$schema" in it loads: the gateway ignores the key.
    const home = tempHome()
    writeConfig(home, JSON.stringify(good))
    expect((await runCli(['config', 'validate'], { home })).stdout).toStartWith('config ok: ')
  })
})

describe('config set and unset with a running gateway', () => {
  test('the gateway reloads: what it applied, what needs a restart; a new token is applied at once', async () => {
    const home = tempHome()
    const port = await freePort()
    const path = configPathOf(home)
    mkdirSync(join(home, '.xopcbot'), { recursive: true })
    writeFileSync(path, `{\n  "gateway": { "host": "127.0.0.1", "port": ${port}, "auth": { "token": "first-token-0123456789" } }\n}\n`, { mode: 0o600 })
    const gateway = await startGateway({ home, port })
    try {
      const level = await runCli(['config', 'set', 'logging.level', 'debug'], { home })
      expect(level.stderr).toBe('')
      expect(level.code).toBe(0)
      expect(level.stdout).toContain(`Applied by the running gateway (pid ${gateway.proc.pid}): logging.level`)

      // The request is made with the token in force before the change, so a new token is applied too.
      const token = await runCli(['config', 'set', 'gateway.auth.token', 'second-token-0123456789'], { home })
      expect(token.code).toBe(0)
      expect(token.stdout).not.toContain('second-token-0123456789')
      expect(token.stdout).toContain(': gateway.auth.token')
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: 'Bearer second-token-0123456789' } })).status).toBe(200)
      expect((await fetch(`${gateway.url}/api/status`, { headers: { authorization: 'Bearer first-token-0123456789' } })).status).toBe(401)

      // (Not gateway.port: this gateway's port comes from its --port flag, so the file's does not matter to it.)
      const bodyLimit = await runCli(['config', 'set', 'gateway.maxBodyBytes', '2048'], { home })
      expect(bodyLimit.code).toBe(0)
      expect(bodyLimit.stdout).toContain('Needs a restart to apply: gateway.maxBodyBytes (xopcbot gateway restart)')
      expect((await fetch(`${gateway.url}/health`)).status).toBe(200)

      const unset = await runCli(['config', 'unset', 'logging.level'], { home })
      expect(unset.code).toBe(0)
      expect(unset.stdout).toContain(`Applied by the running gateway (pid ${gateway.proc.pid}): logging.level`)
      expect(readFileSync(path, 'utf8')).toStartWith(`{\n  "gateway": { "host": "127.0.0.1", "port": `)
      expect(existsSync(path)).toBe(true)
    } finally {
      await gateway.stop()
    }
  })
})

describe('config set when the gateway has reloaded the file by itself first', () => {
  test('what the change applied is still reported while an earlier change waits for a restart', async () => {
    const home = tempHome()
    const port = await freePort()
    const path = configPathOf(home)
    mkdirSync(join(home, '.xopcbot'), { recursive: true })
    writeFileSync(path, `{ "gateway": { "host": "127.0.0.1", "port": ${port}, "maxBodyBytes": 4096 } }\n`, { mode: 0o600 })
    const gateway = await startGateway({ home, port })
    try {
      expect((await runCli(['config', 'set', 'gateway.maxBodyBytes', '2048'], { home })).stdout).toContain('Needs a restart to apply: gateway.maxBodyBytes')
      // `config set` in slow motion: the file is written, the gateway's file watcher reloads it, then the POST comes.
      const listener = listenerOf(findGateway(undefined, { HOME: home }))
      const before = checkConfig(JSON.parse(readFileSync(path, 'utf8')), {}).config!
      writeFileSync(path, `{ "gateway": { "host": "127.0.0.1", "port": ${port}, "maxBodyBytes": 2048 }, "logging": { "level": "debug" } }\n`)
      await waitFor(() => /config reloaded.*reason="file change" applied=\["logging\.level"\]/.test(gateway.output()), { what: 'the file watcher reload' })
      const after = checkConfig(JSON.parse(readFileSync(path, 'utf8')), {}).config!
      const printed: string[] = []
      const log = spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line))
      try {
        expect(await applyToGateway(listener, diffConfig(before, after))).toBe(true)
      } finally {
        log.mockRestore()
      }
      expect(printed).toContain(`Applied by the running gateway (pid ${gateway.proc.pid}): logging.level`)
      expect(printed).toContain('Needs a restart to apply: gateway.maxBodyBytes (xopcbot gateway restart)')
    } finally {
      await gateway.stop()
    }
  })
})

describe('gateway token --rotate edits the file the same way', () => {
  test('only the token changes in a hand-written file', async () => {
    const text = '{ "gateway": {"auth": {"token": "old-token-0123456789"}},\n  "channels": {"telegram": {"token": "${TG_TOKEN}"}} }\n'
    const { home, read } = handWritten(text)
    const rotated = await runCli(['gateway', 'token', '--rotate'], { home })
    expect(rotated.code).toBe(0)
    const token = rotated.stdout.split('\n')[1]!.trim()
    expect(read()).toBe(text.replace('old-token-0123456789', token))
  })
})

describe('the README examples', () => {
  /** Words of a shell line as sh would split it (bare words and '…' quotes are all the examples use). */
  const words = (line: string) => [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!)

  test('run as written, in order, on a new home', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('### Changing the config from the command line'))
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!
    const home = tempHome()
    const lines = block.trim().split('\n')
    expect(lines.length).toBeGreaterThan(5)
    for (const line of lines) {
      const [command, comment] = line.split(/\s+# /)
      const [program, ...args] = words(command!)
      expect(program).toBe('xopcbot')
      const result = await runCli(args, { home })
      expect({ line, code: result.code, stderr: result.stderr }).toEqual({ line, code: 0, stderr: expect.any(String) })
      if (args[1] === 'get' && args[2]) expect(result.stdout.trim()).toBe(comment!.trim())
      if (args[1] === 'validate') expect(result.stdout.trim()).toBe(`config ok: ${configPathOf(home)}`)
    }
    const written = JSON.parse(readFileSync(configPathOf(home), 'utf8'))
    expect(written.channels.telegram.allowFrom).toEqual([123456789, '@me'])
    expect(written.pricing['openai/gpt-4.1']).toEqual({ input: 2, output: 8 })
    expect(written.agent).toEqual({ model: 'anthropic/claude-sonnet-4-5' })

    const dash = await runCli(['config', 'set', 'channels.telegram.groups[0]', '--', '-1001234567890'], { home })
    expect(dash.code).toBe(0)
    expect(JSON.parse(readFileSync(configPathOf(home), 'utf8')).channels.telegram.groups).toEqual(['-1001234567890'])
  })
})
