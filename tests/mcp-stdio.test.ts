import { expect, test } from 'bun:test'
import { MAX_LINE, StdioTransport } from '../src/mcp/stdio'

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
