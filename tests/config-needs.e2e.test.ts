import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { maskToken } from '../src/cli/output'
import { ExitCode } from '../src/errors'
import { startFakeTelegram } from './fakes/telegram'
import { freePort, homeWithConfig, runCli, startGateway, tempHome, writeConfig } from './helpers/gateway'

// Management commands read only the config keys they use: a ${VAR} elsewhere (here the Telegram token, which
// only the gateway needs) may be missing from the shell they run in. TG_TOKEN is never set for them.

const API_TOKEN = 'api-token-0123456789abcdef'
const telegram = startFakeTelegram()
afterAll(() => telegram.stop())

function configWithUnsetVariable(home: string, port: number, extra: Record<string, unknown> = {}) {
  const logFile = join(home, 'custom-logs', 'mine.log')
  return {
    logFile,
    config: {
      gateway: { host: '127.0.0.1', port, auth: { token: API_TOKEN } },
      channels: { telegram: { enabled: true, token: '${TG_TOKEN}', apiRoot: telegram.url } },
      logging: { file: logFile },
      ...extra,
    },
  }
}

function writeHome(build: (home: string) => unknown): { home: string; configPath: string } {
  const home = tempHome()
  const configPath = writeConfig(home, JSON.stringify(build(home), null, 2))
  return { home, configPath }
}

describe('a ${VAR} a command does not use need not be set', () => {
  test('gateway logs reads the configured log file', async () => {
    let logFile = ''
    const { home } = writeHome((h) => {
      const made = configWithUnsetVariable(h, 18790)
      logFile = made.logFile
      return made.config
    })
    mkdirSync(join(home, 'custom-logs'))
    writeFileSync(logFile, JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', level: 'info', msg: 'from the custom file' }) + '\n')
    const result = await runCli(['gateway', 'logs', '--json'], { home })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('from the custom file')
  })

  test('gateway token prints it, and --rotate writes only the token, keeping ${TG_TOKEN} as written', async () => {
    const { home, configPath } = writeHome((h) => configWithUnsetVariable(h, 18790).config)
    const before = JSON.parse(readFileSync(configPath, 'utf8'))

    const printed = await runCli(['gateway', 'token'], { home })
    expect(printed.stderr).toBe('')
    expect(printed.stdout.trim()).toBe(API_TOKEN)

    const rotated = await runCli(['gateway', 'token', '--rotate'], { home })
    expect(rotated.stderr).toBe('')
    expect(rotated.code).toBe(0)
    const text = readFileSync(configPath, 'utf8')
    expect(text).toContain('"${TG_TOKEN}"')
    const after = JSON.parse(text)
    expect(after.gateway.auth.token).not.toBe(API_TOKEN)
    expect(rotated.stdout).toContain(after.gateway.auth.token)
    expect({ ...after, gateway: { ...after.gateway, auth: {} } }).toEqual({ ...before, gateway: { ...before.gateway, auth: {} } })
  })

  test('gateway status shows the running gateway and its (masked) token; cron and pairing work', async () => {
    const port = await freePort()
    const { home } = writeHome((h) => configWithUnsetVariable(h, port).config)
    // The gateway itself needs everything: it runs with TG_TOKEN set.
    const gateway = await startGateway({ home, port, env: { TG_TOKEN: telegram.token } })
    try {
      const status = await runCli(['gateway', 'status'], { home })
      expect(status.stderr).toBe('')
      expect(status.code).toBe(0)
      expect(status.stdout).toContain('✅ Gateway is running')
      expect(status.stdout).toContain(`Token: ${maskToken(API_TOKEN)}`)

      const cron = await runCli(['cron', 'list', '--json'], { home })
      expect(cron.stderr).toBe('')
      expect(cron.code).toBe(0)
      expect(JSON.parse(cron.stdout)).toEqual([])

      const pairing = await runCli(['pairing', 'list', '--json'], { home })
      expect(pairing.stderr).toBe('')
      expect(pairing.code).toBe(0)
    } finally {
      await gateway.stop()
    }
  })
})

describe('a ${VAR} a command does use is still a config error naming it (exit 78)', () => {
  test('gateway logs with logging.file from an unset variable', async () => {
    const home = homeWithConfig({ logging: { file: '${LOG_DIR}/gateway.log' } })
    const result = await runCli(['gateway', 'logs'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('logging.file: environment variable LOG_DIR is not set')
  })

  test('gateway token with the token from an unset variable', async () => {
    const home = homeWithConfig({ gateway: { auth: { token: '${MY_API_TOKEN}' } } })
    const result = await runCli(['gateway', 'token'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('gateway.auth.token: environment variable MY_API_TOKEN is not set')
  })

  test('pairing with dataDir from an unset variable', async () => {
    const home = homeWithConfig({ dataDir: '${DATA_HOME}/xopcbot' })
    const result = await runCli(['pairing', 'list'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('environment variable DATA_HOME is not set')
  })

  test('the gateway itself needs every variable', async () => {
    const port = await freePort()
    const { home } = writeHome((h) => configWithUnsetVariable(h, port).config)
    const result = await runCli(['gateway', '--port', String(port), '--host', '127.0.0.1'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('channels.telegram.token: environment variable TG_TOKEN is not set')
  })
})
