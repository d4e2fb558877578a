import { Database } from 'bun:sqlite'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from '../../src/agent/agent'
import { SessionStore } from '../../src/agent/sessions'
import { Config } from '../../src/config/schema'
import { openDatabase } from '../../src/storage/db'
import { makeApp } from './app'
import { startFakeLlm, type FakeLlm } from '../fakes/llm'

export interface AgentSetup {
  app: ReturnType<typeof makeApp>['app']
  fake: FakeLlm
  store: SessionStore
  agent: Agent
  db: Database
  logFile: string
  logger: ReturnType<typeof makeApp>['logger']
}

/** The real app with a real agent and SQLite history, talking to the fake LLM over HTTP. */
export function makeAgentApp({ protocol = 'openai', agent = {}, providers, env = {} }: { protocol?: 'openai' | 'anthropic'; agent?: Record<string, unknown>; providers?: Record<string, unknown>; env?: Record<string, string> } = {}): AgentSetup {
  const fake = startFakeLlm()
  const config = Config.parse({
    agent: { model: protocol === 'openai' ? 'openai/gpt-test' : 'anthropic/claude-test', maxRetries: 0, ...agent },
    providers: providers ?? { [protocol]: { apiKey: 'test-key-123', baseURL: `${fake.url}/v1` } },
  })
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xopcbot-agent-')), 'xopcbot.db'))
  const store = new SessionStore(db)
  const made = makeApp()
  const realAgent = new Agent({ config, env, store, log: made.logger.log })
  const app = makeApp({ agent: realAgent, sessions: store, log: made.logger.log }).app
  return { app, fake, store, agent: realAgent, db, logFile: made.logFile, logger: made.logger }
}

export function postAgent(app: AgentSetup['app'], body: unknown, init: RequestInit = {}) {
  return app.handle(
    new Request('http://localhost/api/agent', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...(init.signal ? { signal: init.signal } : {}),
    }),
  )
}

/** Reads an SSE response event by event; `onEvent` sees each as it arrives. */
export async function readEvents(response: Response, onEvent: (event: { event: string; data: any }) => void = () => {}) {
  const events: { event: string; data: any }[] = []
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event && data !== undefined) {
        const parsed = { event, data: JSON.parse(data) }
        events.push(parsed)
        onEvent(parsed)
      }
    }
  }
  return events
}
