import { describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, substituteEnv } from '../src/config/load'
import { canonicalConfigPath, configHash, dataDirOf, logFileOf, resolvePaths } from '../src/config/paths'
import { Config } from '../src/config/schema'
import { applyGatewayOverrides } from '../src/config/settings'
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
    expect(config.agent.tools).toEqual(['time', 'cron', 'send_message'])
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
    expect(error.message).toContain('agent.maxSteps: expected number, received boolean')
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
