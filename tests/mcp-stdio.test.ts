import { expect, test } from 'bun:test'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_LINE, StdioTransport } from '../src/mcp/stdio'
import { waitFor } from './helpers/wait'

test('a stdio MCP server that writes an endless line is stopped, not buffered without bound', async () => {
  // A real child process that writes more than MAX_LINE characters and never a newline, then waits.
  const script = `const chunk = 'x'.repeat(1 << 20); let left = ${MAX_LINE} + (4 << 20); const write = () => { while (left > 0) { left -= chunk.length; if (!process.stdout.write(chunk)) return process.stdout.once('drain', write) } setInterval(() => {}, 1000) }; write()`
  const transport = new StdioTransport({ command: process.execPath, args: ['-e', script], env: {}, cwd: null })
  const errors: string[] = []
  transport.onerror = (error) => errors.push(error.message)
  await transport.start()
  const exit = await transport.exited
  expect(errors.some((message) => message.includes('without ending a line'))).toBe(true)
  expect(exit).toContain('signal SIGKILL')
}, 20_000)

test('closing a server started through a wrapper stops the wrapper and what it started; none is left running', async () => {
  const pidFile = join(mkdtempSync(join(tmpdir(), 'xopcbot-mcp-')), 'grandchild.pid')
  // The wrapper forks a long-lived process that inherits its pipes, as a launcher script or npx would.
  const transport = new StdioTransport({ command: 'sh', args: ['-c', `sleep 300 & echo $! > ${pidFile}; wait`], env: {}, cwd: null })
  await transport.start()
  const grandchild = Number(await waitFor(() => readFileSync(pidFile, 'utf8').trim() || undefined, { what: 'the grandchild pid' }))
  expect(alive(grandchild)).toBe(true)
  const started = performance.now()
  await transport.close()
  expect(performance.now() - started).toBeLessThan(5000)
  await waitFor(() => !alive(grandchild), { what: 'the grandchild to be gone' })
}, 20_000)

function alive(pid: number): boolean {
  try {
    // A zombie still answers signal 0: read its state from /proc where there is one.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/\) Z /.test(stat)
  } catch {
    return false
  }
}
