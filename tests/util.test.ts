import { describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { z } from 'zod'
import { TimeoutFlag } from '../src/cli/gateway/stop'
import { LOG_LEVELS, PortFromText } from '../src/config/schema'
import { levelAtLeast, MinimumLevel } from '../src/logging/reader'
import { wholeNumber } from '../src/server/params'
import { replaceAtomic, writeFileAtomic } from '../src/util/atomic-write'
import { pollUntil } from '../src/util/poll'
import { IntFromText } from '../src/util/schemas'
import { serialByKey } from '../src/util/serial'
import { waitUntil, withTimeout } from '../src/util/timeout'

/** A promise and the function that resolves it: the tests decide when a task finishes, no sleeps. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { opened, open }
}

describe('serialByKey', () => {
  test('tasks of one key run one at a time, in the order they were given', async () => {
    const serial = serialByKey()
    const gates = [gate(), gate(), gate()]
    const log: string[] = []
    let running = 0
    let most = 0
    const results = gates.map((g, i) =>
      serial.run('chat', async () => {
        running++
        most = Math.max(most, running)
        log.push(`start ${i}`)
        await g.opened
        log.push(`end ${i}`)
        running--
        return i
      }),
    )
    // Finish them in reverse: the order still holds, since the later ones have not started yet.
    gates[2]!.open()
    gates[1]!.open()
    await Bun.sleep(0)
    expect(log).toEqual(['start 0'])
    gates[0]!.open()
    expect(await Promise.all(results)).toEqual([0, 1, 2])
    expect(log).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2'])
    expect(most).toBe(1)
  })

  test('tasks of different keys run in parallel', async () => {
    const serial = serialByKey()
    const blocked = gate()
    let aDone = false
    const a = serial.run('a', async () => {
      await blocked.opened
      aDone = true
    })
    // b finishes while a still waits: it did not queue behind another key's task.
    await serial.run('b', () => 'b')
    expect(aDone).toBe(false)
    expect(serial.has('a')).toBe(true)
    blocked.open()
    await a
    expect(aDone).toBe(true)
  })

  test('a failed task rejects its own promise and does not hold up the next of its key', async () => {
    const serial = serialByKey()
    const failed = serial.run('k', () => Promise.reject(new Error('boom')))
    const next = serial.run('k', () => 'next ran')
    await expect(failed).rejects.toThrow('boom')
    expect(await next).toBe('next ran')
  })

  test('pending and idle count what runs or waits, on every key', async () => {
    const serial = serialByKey()
    const blocked = gate()
    const first = serial.run('k', () => blocked.opened)
    const second = serial.run('k', () => 'after')
    const other = serial.run('other', () => blocked.opened)
    expect(serial.pending).toBe(3)
    expect(await serial.idle(30)).toBe(false)
    blocked.open()
    await Promise.all([first, second, other])
    expect(await serial.idle(1000)).toBe(true)
    expect(serial.pending).toBe(0)
    expect(serial.has('k')).toBe(false)
  })
})

describe('pollUntil', () => {
  test('resolves with the first value the check returns once its condition holds', async () => {
    let calls = 0
    const value = await pollUntil(() => (++calls >= 3 ? { calls } : null), { timeoutMs: 5000, intervalMs: 1 })
    expect(value).toEqual({ calls: 3 })
  })

  test('awaits an async check', async () => {
    let calls = 0
    const value = await pollUntil(async () => ++calls === 2 && 'ready', { timeoutMs: 5000, intervalMs: 1 })
    expect(value).toBe('ready')
    expect(calls).toBe(2)
  })

  test('resolves null at the deadline, after checking more than once', async () => {
    let calls = 0
    const started = Date.now()
    const value = await pollUntil(
      () => {
        calls++
        return false
      },
      { timeoutMs: 100, intervalMs: 10 },
    )
    const took = Date.now() - started
    expect(value).toBeNull()
    expect(calls).toBeGreaterThan(1)
    expect(took).toBeGreaterThanOrEqual(100)
    expect(took).toBeLessThan(2000)
  })

  test('checks once even with no time at all', async () => {
    expect(await pollUntil(() => 'now', { timeoutMs: 0, intervalMs: 10 })).toBe('now')
    expect(await pollUntil(() => null, { timeoutMs: 0, intervalMs: 10 })).toBeNull()
  })

  test('waitUntil and withTimeout answer true/false and the fallback', async () => {
    let done = false
    setTimeout(() => (done = true), 20)
    expect(await waitUntil(() => done, 5000)).toBe(true)
    expect(await waitUntil(() => false, 30)).toBe(false)
    expect(await withTimeout(new Promise(() => {}), 20, 'fallback')).toBe('fallback')
    expect(await withTimeout(Promise.resolve('value'), 5000, 'fallback')).toBe('value')
  })
})

describe('writeFileAtomic', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'xopcbot-util-'))

  test('replaces the file with the new text and leaves no temp file', () => {
    const d = dir()
    const path = join(d, 'config.json')
    writeFileSync(path, 'old')
    writeFileAtomic(path, 'new')
    expect(readFileSync(path, 'utf8')).toBe('new')
    expect(readdirSync(d)).toEqual(['config.json'])
  })

  test.skipIf(process.platform === 'win32')('creates the file with the mode given (0600), also when replacing a more open one', () => {
    const d = dir()
    const path = join(d, 'token')
    writeFileSync(path, 'old', { mode: 0o644 })
    writeFileAtomic(path, 'secret', { mode: 0o600 })
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })

  test('a failed rename leaves no temp file behind', () => {
    const d = dir()
    // A non-empty directory where the file should go: the temp file is written, the rename fails.
    const path = join(d, 'occupied')
    mkdirSync(path)
    writeFileSync(join(path, 'inside'), 'x')
    expect(() => writeFileAtomic(path, 'text')).toThrow()
    expect(readdirSync(d)).toEqual(['occupied'])
  })

  test('a write that fails half way leaves the old file as it was and no partial file', () => {
    const d = dir()
    const path = join(d, 'SHA256SUMS')
    writeFileSync(path, 'old')
    expect(() =>
      replaceAtomic(path, (temp) => {
        writeFileSync(temp, 'half of the new')
        throw new Error('ENOSPC: no space left on device')
      }),
    ).toThrow('ENOSPC')
    expect(readFileSync(path, 'utf8')).toBe('old')
    expect(readdirSync(d)).toEqual(['SHA256SUMS'])
  })
})

describe('IntFromText and the schemas built on it', () => {
  const messageOf = (schema: z.ZodType, value: unknown) => {
    const result = schema.safeParse(value)
    if (result.success) throw new Error(`expected ${JSON.stringify(value)} to be refused`)
    return result.error.issues[0]!.message
  }

  test('turns digits into a number', () => {
    expect(IntFromText().parse('42')).toBe(42)
    expect(IntFromText().parse('007')).toBe(7)
  })

  test('refuses anything but digits, with the message given', () => {
    expect(messageOf(IntFromText(), 'abc')).toBe('must be a whole number')
    expect(messageOf(IntFromText(), '-1')).toBe('must be a whole number')
    expect(messageOf(IntFromText(), '1.5')).toBe('must be a whole number')
    expect(messageOf(IntFromText(), '')).toBe('must be a whole number')
    expect(messageOf(IntFromText('must be a whole number of seconds'), '1e3')).toBe('must be a whole number of seconds')
  })

  test('the copies it replaced keep their messages', () => {
    expect(messageOf(PortFromText, 'abc')).toBe('must be a whole number from 1 to 65535')
    expect(messageOf(PortFromText, '0')).toBe('must be from 1 to 65535')
    expect(messageOf(PortFromText, '65536')).toBe('must be from 1 to 65535')
    expect(PortFromText.parse('18790')).toBe(18790)
    expect(messageOf(TimeoutFlag, '5s')).toBe('must be a whole number of milliseconds from 0 to 600000')
    expect(messageOf(TimeoutFlag, '600001')).toBe('must be at most 600000 (10 minutes)')
    expect(messageOf(wholeNumber(1, 10), 'x')).toBe('must be a whole number')
    expect(messageOf(wholeNumber(1, 10), '0')).toBe('must be at least 1')
    expect(messageOf(wholeNumber(1, 10), '11')).toBe('must be at most 10')
  })
})

describe('log levels', () => {
  test('one list: the config accepts silent and every level a line can have; filters take the line levels', () => {
    expect([...LOG_LEVELS]).toEqual(['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'])
    expect(MinimumLevel.options).toEqual(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
    const refused = MinimumLevel.safeParse('silent')
    expect(refused.success).toBe(false)
    expect(refused.error?.issues[0]?.message).toBe('must be one of trace, debug, info, warn, error, fatal')
  })

  test('a filter keeps lines at its level and above', () => {
    const line = (level: string) => ({ raw: '', entry: { level } })
    expect(levelAtLeast(line('warn'), 'warn')).toBe(true)
    expect(levelAtLeast(line('fatal'), 'trace')).toBe(true)
    expect(levelAtLeast(line('info'), 'warn')).toBe(false)
    expect(levelAtLeast(line('debug'), 'info')).toBe(false)
    // a line without a level counts as info
    expect(levelAtLeast({ raw: 'plain text', entry: null }, 'info')).toBe(true)
    expect(levelAtLeast({ raw: 'plain text', entry: null }, 'warn')).toBe(false)
  })
})
