import { describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Config } from '../src/config/schema'
import { consoleReporter, createLogger } from '../src/logging/logger'
import { REDACTED, secretsOf } from '../src/logging/redact'
import { RotatingFile } from '../src/logging/rotating-file'

const tempLog = () => join(mkdtempSync(join(tmpdir(), 'xopcbot-log-')), 'logs', 'gateway.log')
const readLines = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l))

describe('RotatingFile', () => {
  test('a directory that cannot be created: a bounded buffer of the newest lines, written once it can be', () => {
    const root = mkdtempSync(join(tmpdir(), 'xopcbot-log-'))
    const path = join(root, 'logs', 'gateway.log')
    const file = new RotatingFile(path, { maxBytes: 10 * 1024 * 1024, maxFiles: 2, flushDelayMs: 60_000 })
    rmSync(join(root, 'logs'), { recursive: true })
    // A file where the directory should be: it cannot be recreated, not even by root.
    writeFileSync(join(root, 'logs'), 'in the way')
    const stderr = process.stderr.write
    process.stderr.write = () => true
    try {
      file.write('first')
      file.flush()
      for (let i = 0; i < 25_000; i++) file.write(JSON.stringify({ i }))
      file.flush()
    } finally {
      process.stderr.write = stderr
    }
    expect((file as unknown as { fd: number }).fd).toBe(-1)
    expect((file as unknown as { pending: string[] }).pending.length).toBe(10_000)
    rmSync(join(root, 'logs'))
    file.close()
    const lines = readFileSync(path, 'utf8').trim().split('\n')
    expect(lines.length).toBe(10_000)
    expect(JSON.parse(lines[0]!).i).toBe(15_000)
    expect(JSON.parse(lines.at(-1)!).i).toBe(24_999)
  })

  test('rotates by size and keeps maxFiles old files, newest in .1', () => {
    const path = tempLog()
    const file = new RotatingFile(path, { maxBytes: 1000, maxFiles: 2 })
    for (let i = 0; i < 100; i++) file.write(JSON.stringify({ i, pad: 'x'.repeat(80) }))
    file.close()
    for (const p of [path, `${path}.1`, `${path}.2`]) {
      expect(statSync(p).size).toBeLessThanOrEqual(1000)
      expect(statSync(p).mode & 0o777).toBe(0o600)
    }
    expect(existsSync(`${path}.3`)).toBe(false)
    const current = readLines(path).map((l) => l.i)
    const previous = readLines(`${path}.1`).map((l) => l.i)
    expect(current.at(-1)).toBe(99)
    expect(previous.at(-1)).toBe(current[0]! - 1)
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700)
  })

  test('appends to an existing file', () => {
    const path = tempLog()
    const a = new RotatingFile(path, { maxBytes: 1 << 20, maxFiles: 1 })
    a.write('{"n":1}')
    a.close()
    const b = new RotatingFile(path, { maxBytes: 1 << 20, maxFiles: 1 })
    b.write('{"n":2}')
    b.close()
    expect(readLines(path)).toEqual([{ n: 1 }, { n: 2 }])
  })
})

describe('logger', () => {
  test('writes {ts, level, tag, msg, ...fields} lines and respects the level', () => {
    const path = tempLog()
    const { log, close } = createLogger({ level: 'info', console: false, file: { path, maxBytes: 1 << 20, maxFiles: 1 } })
    log.withTag('telegram').info('polling started', { offset: 7 })
    log.warn('careful')
    log.debug('hidden at info')
    log.error('failed', new Error('boom'))
    close()
    const lines = readLines(path)
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatchObject({ level: 'info', tag: 'telegram', msg: 'polling started', offset: 7 })
    expect(Object.keys(lines[0]).slice(0, 4)).toEqual(['ts', 'level', 'tag', 'msg'])
    expect(Number.isNaN(Date.parse(lines[0].ts))).toBe(false)
    expect(lines[1]).toMatchObject({ level: 'warn', tag: 'gateway', msg: 'careful' })
    expect(lines[2].err.message).toBe('boom')
  })

  test('identical lines are all written (no throttling)', () => {
    const path = tempLog()
    const { log, close } = createLogger({ level: 'info', console: false, file: { path, maxBytes: 1 << 20, maxFiles: 1 } })
    for (let i = 0; i < 20; i++) log.info('same line')
    close()
    expect(readLines(path)).toHaveLength(20)
  })

  test("MCP servers' credentials are secrets, their other settings are not", () => {
    const config = Config.parse({
      mcp: {
        servers: {
          search: { url: 'https://mcp.example/mcp', headers: { Authorization: 'Bearer mcp-bearer-token-123' } },
          files: { command: 'x', env: { LOG_LEVEL: 'warn', ROOT_DIR: '/home/me/notes', GITHUB_TOKEN: 'ghp_abcdef123', SEARCH_KEY: 'k-987654321' } },
        },
      },
    })
    const secrets = secretsOf(config)
    for (const secret of ['Bearer mcp-bearer-token-123', 'mcp-bearer-token-123', 'ghp_abcdef123', 'k-987654321']) expect(secrets).toContain(secret)
    for (const plain of ['warn', '/home/me/notes']) expect(secrets).not.toContain(plain)
  })

  test('secrets never reach the file or the console', () => {
    const path = tempLog()
    const config = Config.parse({
      gateway: { auth: { token: 'gateway-token-abcdef' } },
      providers: { openai: { apiKey: 'sk-live-provider-key' } },
      channels: { myapp: { type: 'webhook', url: 'https://x.example', secret: 'webhook-secret-0123456789' } },
    })
    let consoleText = ''
    const stream = { write: (chunk: string) => ((consoleText += chunk), true) } as unknown as NodeJS.WritableStream
    const { log, redactor, close } = createLogger({ level: 'info', console: false, file: { path, maxBytes: 1 << 20, maxFiles: 1 } })
    redactor.setSecrets(secretsOf(config))
    log.addReporter(consoleReporter(redactor, () => log.level, stream))
    log.info('calling with sk-live-provider-key inside', { headers: { Authorization: 'Bearer gateway-token-abcdef' }, apiKey: 'whatever', note: 'webhook-secret-0123456789' })
    log.error('failed', new Error('token gateway-token-abcdef rejected'))
    close()
    const text = readFileSync(path, 'utf8')
    for (const secret of ['gateway-token-abcdef', 'sk-live-provider-key', 'webhook-secret-0123456789', 'whatever']) {
      expect(text).not.toContain(secret)
      expect(consoleText).not.toContain(secret)
    }
    expect(text).toContain(REDACTED)
    expect(consoleText).toContain(REDACTED)
  })
})
