import { describe, expect, test } from 'bun:test'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { RotatingFile } from '../src/logging/rotating-file'
import { readLastLines } from '../src/logging/reader'
import { childEnv, fromSource, runCli, tempHome } from './helpers/gateway'
import { waitFor } from './helpers/wait'

const LEVELS = ['debug', 'info', 'warn', 'error'] as const

/** A log of `count` lines, rotated into several files the way the gateway writes it. */
function writeLog(home: string, count: number, maxBytes = 4000) {
  const path = join(home, '.xopcbot', 'logs', 'gateway.log')
  mkdirSync(join(home, '.xopcbot', 'logs'), { recursive: true })
  const file = new RotatingFile(path, { maxBytes, maxFiles: 5 })
  for (let n = 0; n < count; n++) {
    file.write(JSON.stringify({ ts: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(), level: LEVELS[n % 4], tag: 'test', msg: `line ${n}`, n }))
  }
  file.close()
  return { path, file }
}

describe('gateway logs', () => {
  test('--lines reads across rotated files, oldest first', async () => {
    const home = tempHome()
    writeLog(home, 200)
    const result = await runCli(['gateway', 'logs', '--lines', '60', '--json'], { home })
    expect(result.code).toBe(0)
    const ns = result.stdout.trim().split('\n').map((l) => JSON.parse(l).n)
    expect(ns).toEqual(Array.from({ length: 60 }, (_, i) => 140 + i))
  })

  test('the default is 50 lines, in a readable layout', async () => {
    const home = tempHome()
    writeLog(home, 120)
    const result = await runCli(['gateway', 'logs'], { home })
    const lines = result.stdout.trim().split('\n')
    expect(lines).toHaveLength(50)
    expect(lines.at(-1)).toBe('2026-01-01 00:01:59Z ERROR [test] line 119 n=119')
  })

  test('--level keeps that level and above', async () => {
    const home = tempHome()
    writeLog(home, 200)
    const result = await runCli(['gateway', 'logs', '--level', 'warn', '--lines', '10', '--json'], { home })
    const entries = result.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(entries).toHaveLength(10)
    expect(entries.every((e) => e.level === 'warn' || e.level === 'error')).toBe(true)
    expect(entries.at(-1).n).toBe(199)
  })

  test('asking for more lines than exist prints them all', async () => {
    const home = tempHome()
    writeLog(home, 7)
    const result = await runCli(['gateway', 'logs', '--lines', '1000', '--json'], { home })
    expect(result.stdout.trim().split('\n')).toHaveLength(7)
  })

  test('--follow prints lines written after it started, also across a rotation', async () => {
    const home = tempHome()
    const { path } = writeLog(home, 3, 1_000_000)
    const follower = Bun.spawn([...fromSource, 'gateway', 'logs', '--follow', '--json', '--lines', '1'], { env: childEnv(home), stdout: 'pipe', stderr: 'pipe' })
    let out = ''
    ;(async () => {
      for await (const chunk of follower.stdout) out += new TextDecoder().decode(chunk)
    })()
    try {
      await waitFor(() => out.includes('"n":2'), { what: 'the last existing line' })
      const writer = new RotatingFile(path, { maxBytes: 600, maxFiles: 3 })
      for (let n = 100; n < 110; n++) writer.write(JSON.stringify({ level: 'info', msg: `new ${n}`, n }))
      writer.flush()
      await waitFor(() => out.includes('"n":109'), { what: 'lines written across rotations' })
      writer.close()
      const ns = out.trim().split('\n').map((l) => JSON.parse(l).n)
      expect(ns).toEqual([2, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109])
      follower.kill('SIGINT')
      expect(await follower.exited).toBe(0)
    } finally {
      follower.kill('SIGKILL')
    }
  })

  test('reading the end of a large log touches only its end', () => {
    const home = tempHome()
    const { path } = writeLog(home, 20_000, 50 * 1024 * 1024)
    const last = readLastLines(path, 3)
    expect(last.map((e) => e.entry?.n)).toEqual([19997, 19998, 19999])
  })
})
