import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { ExitCode } from '../src/errors'
import { freePort, homeWithConfig, runCli, startGateway, tempHome } from './helpers/gateway'

const BOM = '\uFEFF'

describe('what the config loader accepts and refuses', () => {
  test('a config file that starts with a UTF-8 byte order mark is accepted', async () => {
    const port = await freePort()
    const home = homeWithConfig(BOM + JSON.stringify({ gateway: { host: '127.0.0.1', port, auth: { token: 'bom-token-0123456789' } } }))
    const gateway = await startGateway({ home, port })
    try {
      const status = await fetch(`${gateway.url}/api/status`, { headers: { authorization: 'Bearer bom-token-0123456789' } })
      expect(status.status).toBe(200)
    } finally {
      await gateway.stop()
    }
    // Management commands read it too, and rotating the token rewrites it.
    const rotated = await runCli(['gateway', 'token', '--rotate'], { home })
    expect(rotated.stderr).toBe('')
    expect(rotated.code).toBe(0)
  })

  test.skipIf(process.platform === 'win32')(
    'a FIFO as the config path is refused at once, not read (reading one blocks until someone writes)',
    async () => {
      const dir = tempHome()
      const fifo = join(dir, 'config.json')
      expect(await Bun.spawn(['mkfifo', fifo]).exited).toBe(0)
      const started = Date.now()
      const result = await runCli(['gateway', '--config', fifo, '--port', String(await freePort())], { home: dir, timeoutMs: 8_000 })
      expect(result.code).toBe(ExitCode.CONFIG)
      expect(result.stderr).toContain(`Invalid config ${fifo}: it is not a regular file`)
      expect(Date.now() - started).toBeLessThan(8_000)
      const logs = await runCli(['gateway', 'logs', '--config', fifo], { home: dir, timeoutMs: 8_000 })
      expect(logs.code).toBe(ExitCode.CONFIG)
    },
    20_000,
  )

  test.skipIf(process.platform === 'win32')('a device as the config path is refused', async () => {
    const result = await runCli(['gateway', '--config', '/dev/null', '--port', String(await freePort())])
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('it is not a regular file')
  })

  test('a directory as the config path is refused', async () => {
    const dir = tempHome()
    const result = await runCli(['gateway', '--config', dir, '--port', String(await freePort())], { home: dir })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('it is a directory, not a file')
  })
})

describe('an impossible host is refused before anything listens', () => {
  const impossible = [
    ['999.1.1.1', '999 is more than 255'],
    ['256.0.0.1', '256 is more than 255'],
    ['1.2.3', 'is not a valid IPv4 address'],
    ['1.2.3.4.5', 'is not a valid IPv4 address'],
    ['bad host!', 'must be an IP address'],
    ['host-.example', 'must be an IP address'],
    ['a..b', 'must be an IP address'],
    ['::g', 'is not a valid IPv6 address'],
  ] as const

  for (const [host, why] of impossible) {
    test(`--host ${JSON.stringify(host)} is a usage error naming the flag`, async () => {
      const result = await runCli(['gateway', '--host', host, '--port', String(await freePort())])
      expect(result.code).toBe(ExitCode.USAGE)
      expect(result.stderr).toContain(`--host: `)
      expect(result.stderr).toContain(why)
      expect(result.stderr).not.toContain('Unexpected error')
    })
  }

  test('gateway.host in the config is a config error (78) naming the key', async () => {
    const home = homeWithConfig({ gateway: { host: '999.1.1.1', port: await freePort() } })
    const result = await runCli(['gateway'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('gateway.host: is not a valid IPv4 address: 999 is more than 255')
  })

  test('XOPCBOT_GATEWAY_HOST is a config error (78) naming the variable', async () => {
    const result = await runCli(['gateway', '--port', String(await freePort())], { env: { XOPCBOT_GATEWAY_HOST: '999.1.1.1' } })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('XOPCBOT_GATEWAY_HOST: is not a valid IPv4 address: 999 is more than 255')
  })
})
