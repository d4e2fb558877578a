import { describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, substituteEnv } from '../src/config/load'
import { canonicalConfigPath, configHash, dataDirOf, logFileOf, resolvePaths } from '../src/config/paths'
import { Config, hostProblem } from '../src/config/schema'
import { applyGatewayOverrides } from '../src/config/settings'
import { updateConfigFile } from '../src/config/write'
import { ConfigError, ExitCode } from '../src/errors'

const dir = () => mkdtempSync(join(tmpdir(), 'xopcbot-config-'))

function writeConfig(text: string) {
  const path = join(dir(), 'config.json')
  writeFileSync(path, text)
  return path
}

function configError(path: string, env: Record<string, string> = {}): ConfigError {
  try {
    loadConfig(path, env)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('config schema', () => {
  test('an empty object gives every default', () => {
    const config = Config.parse({})
    expect(config.gateway).toEqual({ host: '0.0.0.0', port: 18790, auth: { token: null }, cors: { origins: [] }, maxBodyBytes: 1048576, shutdownTimeoutMs: 5000 })
    expect(config.agent.model).toBe('openai/gpt-4o-mini')
    expect(config.agent.tools).toEqual(['time', 'cron', 'send_message', 'web_fetch'])
    expect(config.logging).toEqual({ level: 'info', file: null, maxFileBytes: 10485760, maxFiles: 5 })
    expect(config.cron.timezone).toBe('UTC')
  })

  test('the example of the spec is valid', () => {
    const config = Config.parse({
      gateway: { host: '0.0.0.0', port: 18790, auth: { token: null }, cors: { origins: [] }, maxBodyBytes: 1048576, shutdownTimeoutMs: 5000 },
      agent: { model: 'openai/gpt-4o-mini', systemPrompt: '…', maxSteps: 8, timeoutMs: 120000, historyLimit: 50, concurrency: 4, tools: ['time', 'cron', 'send_message'] },
      providers: { openai: { apiKey: 'sk-x' }, local: { type: 'openai-compatible', baseURL: 'http://127.0.0.1:11434/v1' } },
      channels: {
        telegram: { enabled: false, token: 'x', mode: 'polling', webhookSecret: null, publicUrl: null, apiRoot: 'https://api.telegram.org', allowFrom: [] },
        myapp: { type: 'webhook', url: 'https://example.com/xopcbot-hook', secret: 'a-secret-of-16-chars' },
      },
      cron: { timezone: 'UTC' },
      logging: { level: 'info', maxFileBytes: 10485760, maxFiles: 5 },
    })
    expect(config.channels.telegram?.type).toBe('telegram')
    expect(config.channels.myapp?.type).toBe('webhook')
  })

  test('every field carries a description', () => {
    const json = JSON.stringify(Config.toJSONSchema?.() ?? {})
    expect(json).toContain('TCP port of the REST API.')
    expect(json).toContain('Drain budget on stop and restart')
  })
})

describe('loadConfig', () => {
  test('a missing file gives the defaults and is not created', () => {
    const path = join(dir(), 'config.json')
    const loaded = loadConfig(path, {})
    expect(loaded.exists).toBe(false)
    expect(loaded.config.gateway.port).toBe(18790)
    expect(Bun.file(path).size).toBe(0)
  })

  test('bad JSON names the file', () => {
    const path = writeConfig('{ "gateway": { "port": 1 ')
    const error = configError(path)
    expect(error.message).toContain(path)
    expect(error.message).toContain('not valid JSON')
    expect(error.exitCode).toBe(ExitCode.CONFIG)
  })

  test('comments and trailing commas get their own explanation', () => {
    const error = configError(writeConfig('{ // mine\n "gateway": { "port": 1, }\n}'))
    expect(error.message).toContain('comments or trailing commas')
  })

  test('a wrong type names the key path', () => {
    const error = configError(writeConfig('{"gateway": {"port": "8080"}, "agent": {"maxSteps": true}}'))
    expect(error.message).toContain('agent.maxSteps: must be a number')
    expect(error.message).toContain('gateway.port: must be a whole number')
  })

  test('an out-of-range value names the key path and the range', () => {
    expect(configError(writeConfig('{"gateway": {"port": 70000}}')).message).toContain('gateway.port: must be from 1 to 65535')
  })

  test('unknown keys are rejected with their full path, at any depth', () => {
    const error = configError(writeConfig('{"gateway": {"prot": 1, "auth": {"tokn": "x"}}, "extra": true}'))
    expect(error.problems).toContain('gateway.prot: unknown key')
    expect(error.problems).toContain('gateway.auth.tokn: unknown key')
    expect(error.problems).toContain('extra: unknown key')
  })

  test('array elements are named by index', () => {
    const error = configError(writeConfig('{"gateway": {"cors": {"origins": ["https://ok.example", "https://bad.example/path"]}}}'))
    expect(error.message).toContain('gateway.cors.origins[1]: must be an origin')
  })

  test('a missing ${VAR} is named with its key path', () => {
    const error = configError(writeConfig('{"providers": {"openai": {"apiKey": "${OPENAI_API_KEY}"}}}'), {})
    expect(error.message).toContain('providers.openai.apiKey: environment variable OPENAI_API_KEY is not set')
  })

  test('${VAR} is replaced in any string, and $${ stays literal', () => {
    const path = writeConfig('{"gateway": {"auth": {"token": "${TOKEN}"}}, "agent": {"systemPrompt": "pre ${WHO} $${NOT} post"}}')
    const { config } = loadConfig(path, { TOKEN: 'a-long-token-value', WHO: 'me' })
    expect(config.gateway.auth.token).toBe('a-long-token-value')
    expect(config.agent.systemPrompt).toBe('pre me ${NOT} post')
  })

  test('a substituted value cannot break the JSON around it', () => {
    expect(substituteEnv({ a: '${X}' }, { X: '"}, "gateway": {' }, [])).toEqual({ a: '"}, "gateway": {' })
  })

  test('a channel that is not telegram must say its type', () => {
    expect(configError(writeConfig('{"channels": {"myapp": {"url": "https://x.example"}}}')).message).toContain('channels.myapp.type')
  })

  test('a custom provider needs a type and a baseURL', () => {
    const error = configError(writeConfig('{"providers": {"mine": {}}}'))
    expect(error.message).toContain('providers.mine.type')
    expect(error.message).toContain('providers.mine.baseURL')
  })

  test('an enabled telegram channel needs a token', () => {
    expect(configError(writeConfig('{"channels": {"telegram": {"enabled": true}}}')).message).toContain('channels.telegram.token: is required when the channel is enabled')
  })

  test('an unknown time zone is rejected', () => {
    expect(configError(writeConfig('{"cron": {"timezone": "Mars/Olympus"}}')).message).toContain('cron.timezone: must be an IANA time zone')
  })
})

describe('precedence: flag > environment > file > default', () => {
  const file = Config.parse({ gateway: { port: 1111, host: '127.0.0.1', auth: { token: 'file-token-123' } } })

  test('file beats default', () => {
    expect(applyGatewayOverrides(file, {}).gateway.port).toBe(1111)
    expect(applyGatewayOverrides(Config.parse({}), {}).gateway.port).toBe(18790)
  })

  test('environment beats file', () => {
    const config = applyGatewayOverrides(file, { XOPCBOT_GATEWAY_PORT: '2222', XOPCBOT_GATEWAY_TOKEN: 'env-token-456', XOPCBOT_GATEWAY_HOST: '::1' })
    expect(config.gateway.port).toBe(2222)
    expect(config.gateway.host).toBe('::1')
    expect(config.gateway.auth.token).toBe('env-token-456')
  })

  test('flag beats environment', () => {
    const config = applyGatewayOverrides(file, { XOPCBOT_GATEWAY_PORT: '2222', XOPCBOT_GATEWAY_TOKEN: 'env-token-456' }, { port: 3333, token: 'flag-token-789' })
    expect(config.gateway.port).toBe(3333)
    expect(config.gateway.auth.token).toBe('flag-token-789')
  })

  test('a bad environment value is a config error naming the variable', () => {
    expect(() => applyGatewayOverrides(file, { XOPCBOT_GATEWAY_PORT: 'abc' })).toThrow(/XOPCBOT_GATEWAY_PORT: must be a whole number/)
  })

  test('the loaded config is not changed', () => {
    applyGatewayOverrides(file, {}, { port: 4444 })
    expect(file.gateway.port).toBe(1111)
  })
})

describe('paths', () => {
  test('--config beats XOPCBOT_CONFIG beats <home>/config.json', () => {
    expect(resolvePaths({ env: {}, homeDir: '/h', cwd: '/w' }).configPath).toBe('/h/.xopcbot/config.json')
    expect(resolvePaths({ env: { XOPCBOT_HOME: '/x' }, homeDir: '/h', cwd: '/w' }).configPath).toBe('/x/config.json')
    expect(resolvePaths({ env: { XOPCBOT_CONFIG: 'c.json' }, homeDir: '/h', cwd: '/w' }).configPath).toBe('/w/c.json')
    expect(resolvePaths({ env: { XOPCBOT_CONFIG: 'c.json' }, configFlag: '~/d.json', homeDir: '/h', cwd: '/w' }).configPath).toBe('/h/d.json')
    expect(resolvePaths({ env: { XOPCBOT_HOME: '/x' }, homeDir: '/h' }).locksDir).toBe('/x/locks')
  })

  test('data dir and log file follow the config', () => {
    const config = Config.parse({})
    expect(dataDirOf(config, '/a/b/config.json')).toBe('/a/b')
    expect(logFileOf(config, '/a/b')).toBe('/a/b/logs/gateway.log')
    expect(dataDirOf(Config.parse({ dataDir: 'data' }), '/a/b/config.json')).toBe('/a/b/data')
  })

  test('two spellings of one file give one hash; two files give two', () => {
    const base = dir()
    mkdirSync(join(base, 'sub'))
    writeFileSync(join(base, 'config.json'), '{}')
    symlinkSync(join(base, 'config.json'), join(base, 'link.json'))
    const a = configHash(canonicalConfigPath(join(base, 'config.json')))
    const b = configHash(canonicalConfigPath(join(base, 'sub', '..', 'link.json')))
    const c = configHash(canonicalConfigPath(join(base, 'other.json')))
    expect(a).toMatch(/^[0-9a-f]{16}$/)
    expect(b).toBe(a)
    expect(c).not.toBe(a)
    expect(canonicalConfigPath('/A/Config.json', 'darwin')).toBe('/a/config.json')
  })
})

describe('what the loader reads', () => {
  test('a UTF-8 byte order mark is accepted', () => {
    const { config } = loadConfig(writeConfig('\uFEFF{"gateway": {"port": 4321}}'), {})
    expect(config.gateway.port).toBe(4321)
  })

  test('only a regular file is read: a directory or a device is refused with a sentence', () => {
    expect(configError(dir()).problems[0]).toContain('it is a directory, not a file')
  })

  test.skipIf(process.platform === 'win32')('a device (no end, never a config) is refused before it is read', () => {
    const error = configError('/dev/null')
    expect(error.message).toBe('Invalid config /dev/null: it is not a regular file (a FIFO, socket or device); give the path of a JSON file')
  })

  test('rotating a value keeps ${VAR}s elsewhere as written and drops the byte order mark', () => {
    const path = writeConfig('\uFEFF{"gateway": {"auth": {"token": "old-token-123"}}, "channels": {"telegram": {"enabled": true, "token": "${TG_TOKEN}"}}}')
    updateConfigFile(path, {}, (raw) => (raw.gateway.auth.token = 'new-token-456'), { needs: ['gateway.auth'] })
    const text = readFileSync(path, 'utf8')
    expect(text.charCodeAt(0)).toBe('{'.charCodeAt(0))
    expect(JSON.parse(text)).toEqual({ gateway: { auth: { token: 'new-token-456' } }, channels: { telegram: { enabled: true, token: '${TG_TOKEN}' } } })
    // Without `needs`, the whole file must load, so it is refused and not rewritten.
    expect(() => updateConfigFile(path, {}, (raw) => (raw.gateway.auth.token = 'other-token-789'))).toThrow(/TG_TOKEN is not set/)
    expect(JSON.parse(readFileSync(path, 'utf8')).gateway.auth.token).toBe('new-token-456')
  })
})

describe('loading only the keys a command needs', () => {
  const text = JSON.stringify({
    dataDir: '/data',
    gateway: { port: 1234, host: '${HOST}', auth: { token: 'the-token-123' } },
    channels: { telegram: { enabled: true, token: '${TG_TOKEN}' }, hook: { type: 'webhook', url: '${HOOK_URL}', secret: 'a-secret-of-16-chars' } },
    logging: { file: '${LOG_DIR}/gw.log', level: 'debug' },
    agent: { maxSteps: 'not a number' },
  })

  test('a missing ${VAR} or a mistake outside the needed keys does not matter', () => {
    const path = writeConfig(text)
    const { config, exists } = loadConfig(path, {}, { needs: ['gateway.auth', 'dataDir'] })
    expect(exists).toBe(true)
    expect(config.gateway.auth.token).toBe('the-token-123')
    expect(config.dataDir).toBe('/data')
  })

  test('a missing ${VAR} under a needed key is the usual error naming it', () => {
    const path = writeConfig(text)
    const error = (() => {
      try {
        loadConfig(path, {}, { needs: ['dataDir', 'logging'] })
      } catch (e) {
        return e as ConfigError
      }
    })()
    expect(error).toBeInstanceOf(ConfigError)
    expect(error!.exitCode).toBe(ExitCode.CONFIG)
    expect(error!.problems).toEqual(['logging.file: environment variable LOG_DIR is not set'])
    expect(loadConfig(path, { LOG_DIR: '/logs' }, { needs: ['dataDir', 'logging'] }).config.logging).toMatchObject({ file: '/logs/gw.log', level: 'debug' })
  })

  test('a needed key that is invalid is an error; a needed parent that is not an object is named', () => {
    expect(() => loadConfig(writeConfig('{"gateway": {"auth": {"token": "short"}}}'), {}, { needs: ['gateway.auth'] })).toThrow(/gateway\.auth\.token: must be at least 8 characters/)
    expect(() => loadConfig(writeConfig('{"gateway": "nope"}'), {}, { needs: ['gateway.auth'] })).toThrow(/gateway: must be an object/)
  })

  test('overlapping key paths take the whole section', () => {
    const path = writeConfig('{"gateway": {"port": 2345, "auth": {"token": "the-token-123"}}}')
    const { config } = loadConfig(path, {}, { needs: ['gateway.auth', 'gateway', 'gateway.port'] })
    expect(config.gateway.port).toBe(2345)
    expect(config.gateway.auth.token).toBe('the-token-123')
  })

  test('without needs, everything must load (the gateway itself)', () => {
    const error = configError(writeConfig(text))
    expect(error.problems).toContain('channels.telegram.token: environment variable TG_TOKEN is not set')
    expect(error.problems).toContain('gateway.host: environment variable HOST is not set')
  })
})

describe('hosts', () => {
  test('addresses and names that can be bound are accepted', () => {
    for (const host of ['0.0.0.0', '127.0.0.1', '255.255.255.255', '::', '::1', '[::1]', 'fe80::1%eth0', 'localhost', 'localhost.', 'my-host.example.com', 'xn--bcher-kva.example']) {
      expect([host, hostProblem(host)]).toEqual([host, null])
    }
  })

  test('impossible ones say why', () => {
    expect(hostProblem('999.1.1.1')).toBe('is not a valid IPv4 address: 999 is more than 255')
    expect(hostProblem('01.2.3.4')).toContain('without leading zeros')
    expect(hostProblem('example.123')).toContain('is not a valid IPv4 address')
    expect(hostProblem('a_b')).toContain('must be an IP address')
    expect(hostProblem(`${'a'.repeat(64)}.example`)).toContain('must be an IP address')
    expect(hostProblem('1::2::3')).toContain('is not a valid IPv6 address')
  })

  test('in the config and in XOPCBOT_GATEWAY_HOST they are config errors naming the key', () => {
    expect(configError(writeConfig('{"gateway": {"host": "999.1.1.1"}}')).problems).toEqual(['gateway.host: is not a valid IPv4 address: 999 is more than 255'])
    expect(() => applyGatewayOverrides(Config.parse({}), { XOPCBOT_GATEWAY_HOST: '1.2.3' })).toThrow(/XOPCBOT_GATEWAY_HOST: is not a valid IPv4 address/)
  })
})

describe('MCP server names', () => {
  test('"<server>__<tool>" must name one server: no "__" in a name, no "_" at either end', () => {
    for (const name of ['files__admin', '_files', 'files_']) {
      const result = Config.safeParse({ mcp: { servers: { [name]: { command: 'x' } } } })
      expect(result.success, name).toBe(false)
      expect(JSON.stringify(result.error?.issues), name).toContain('no \\"__\\"')
    }
    expect(Config.safeParse({ mcp: { servers: { 'my_files-2': { command: 'x' } } } }).success).toBe(true)
  })
})
