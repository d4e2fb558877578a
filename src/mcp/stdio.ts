import { spawn, type ChildProcess } from 'node:child_process'
import type { JSONRPCMessage, MCPTransport } from '@ai-sdk/mcp'

/** The longest JSON-RPC message (one line) taken from a server. */
export const MAX_LINE = 16 * 1024 * 1024

export interface StdioServer {
  command: string
  args: string[]
  /** the server's whole environment besides PATH and HOME */
  env: Record<string, string>
  cwd: string | null
}

/** PATH and HOME of the gateway, then the server's own variables: nothing else of the gateway's environment. */
export function serverEnvironment(own: Record<string, string>, gateway: Record<string, string | undefined> = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const key of ['PATH', 'HOME']) if (gateway[key] !== undefined) env[key] = gateway[key]!
  return { ...env, ...own }
}

/**
 * MCP over a child's stdin/stdout (newline-delimited JSON-RPC). Our own rather than the AI SDK's stdio
 * transport, which passes on LOGNAME, SHELL, TERM and USER as well and lets the child write to our stderr:
 * here the child gets exactly `serverEnvironment`, its stderr is kept for the error report, and `close()`
 * returns only once the process is gone.
 */
export class StdioTransport implements MCPTransport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void
  private child: ChildProcess | null = null
  private buffer = ''
  private stderrTail = ''
  private readonly exitedWith: Promise<string>
  private resolveExit!: (reason: string) => void

  constructor(private readonly server: StdioServer) {
    this.exitedWith = new Promise((resolve) => (this.resolveExit = resolve))
  }

  /** Resolves, with a sentence, once the process has exited (or could not be started). */
  get exited(): Promise<string> {
    return this.exitedWith
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  start(): Promise<void> {
    if (this.child) return Promise.reject(new Error('the stdio transport is already started'))
    return new Promise((resolve, reject) => {
      const child = spawn(this.server.command, this.server.args, {
        env: serverEnvironment(this.server.env),
        cwd: this.server.cwd ?? undefined,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        // A process group of its own: a server started through a wrapper (a shell script, npx) has children that
        // keep its pipes open; stopping the server stops the whole group, so none of them is left behind.
        detached: process.platform !== 'win32',
      })
      this.child = child
      child.once('spawn', () => resolve())
      child.once('error', (error) => {
        const reason = `cannot start ${JSON.stringify(this.server.command)}: ${error.message}`
        this.resolveExit(reason)
        reject(new Error(reason))
        this.onerror?.(error)
      })
      // 'exit', not 'close': a grandchild may hold the pipes open long after the server itself is gone.
      child.once('exit', (code, signal) => {
        this.signalGroup('SIGKILL')
        child.stdout?.destroy()
        child.stderr?.destroy()
        child.stdin?.destroy()
        const tail = this.stderrTail.trim().split('\n').at(-1)
        this.resolveExit(`the server process exited (${signal ? `signal ${signal}` : `code ${code}`})${tail ? `: ${tail.slice(0, 300)}` : ''}`)
        this.onclose?.()
      })
      child.stdout!.setEncoding('utf8')
      child.stdout!.on('data', (chunk: string) => this.receive(chunk))
      child.stderr!.setEncoding('utf8')
      child.stderr!.on('data', (chunk: string) => (this.stderrTail = (this.stderrTail + chunk).slice(-2000)))
      child.stdin!.on('error', (error) => this.onerror?.(error))
    })
  }

  private receive(chunk: string) {
    // Only the new chunk is searched for a line end: a long line arriving in many chunks costs no more than its length.
    if (chunk.indexOf('\n') < 0) {
      this.buffer += chunk
      // A server that never ends its line would grow this without bound: it is stopped instead.
      if (this.buffer.length > MAX_LINE) {
        this.buffer = ''
        this.onerror?.(new Error(`the server wrote more than ${MAX_LINE} characters without ending a line; it is stopped`))
        this.killNow()
      }
      return
    }
    this.buffer += chunk
    let newline: number
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '')
      this.buffer = this.buffer.slice(newline + 1)
      if (!line.trim()) continue
      try {
        this.onmessage?.(JSON.parse(line) as JSONRPCMessage)
      } catch (error) {
        this.onerror?.(new Error(`the server wrote a line that is not JSON-RPC: ${(error as Error).message}`))
      }
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin
    if (!stdin || stdin.destroyed) throw new Error('the server process is not running')
    await new Promise<void>((resolve, reject) => stdin.write(`${JSON.stringify(message)}\n`, (error) => (error ? reject(error) : resolve())))
  }

  /** SIGTERM, then SIGKILL after 2 s; resolves once the process has exited. */
  async close(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.stdin?.end()
    this.signalGroup('SIGTERM')
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), 2000)
    await this.exitedWith
    clearTimeout(timer)
  }

  /** The last resort (a second Ctrl+C): no waiting. */
  killNow() {
    this.signalGroup('SIGKILL')
  }

  /** Signals the server's whole process group (where there are groups), or else the server alone. */
  private signalGroup(signal: NodeJS.Signals) {
    const pid = this.child?.pid
    if (pid === undefined) return
    try {
      if (process.platform !== 'win32') process.kill(-pid, signal)
      else this.child!.kill(signal)
    } catch {
      // ESRCH: the group is gone already.
    }
  }
}
