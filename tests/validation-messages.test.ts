import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { z } from 'zod'
import { ExitCode } from '../src/errors'
import { describeIssues, describeProblem } from '../src/validation'
import { makeAgentApp, postAgent } from './helpers/agent'
import { makeWorld, type World } from './helpers/channels'
import { homeWithConfig, runCli, type RunningGateway } from './helpers/gateway'

/**
 * Validation problems are told in the user's words, from one formatter (src/validation.ts): "message: must be a
 * string", never zod's "Invalid input: expected string, received number" — in API answers, config errors, CLI
 * flag errors and the tool results of the agent's history.
 */

/** What zod says in its own words; none of it may reach a user. */
const ZOD_WORDING = /expected (string|number|int|boolean|object|array)|received (undefined|null|string|number|boolean|object|array)|Invalid (input|option|string|number|key|discriminator)|Too (small|big)|Unrecognized key|>=|<=/

const describe1 = (schema: z.ZodType, value: unknown, options: { input?: boolean; noun?: 'field' | 'key' } = {}) => {
  const parsed = schema.safeParse(value, { reportInput: true })
  if (parsed.success) throw new Error(`${JSON.stringify(value)} is valid`)
  return describeIssues(parsed.error.issues, [], { ...(options.input ? { input: value } : {}), ...(options.noun ? { noun: options.noun } : {}) }).join('; ')
}

describe('the formatter', () => {
  const field = <T extends z.ZodType>(schema: T) => z.strictObject({ f: schema })
  const cases: [string, z.ZodType, unknown, string][] = [
    ['a string', field(z.string()), { f: 5 }, 'f: must be a string'],
    ['a number', field(z.number()), { f: 'x' }, 'f: must be a number'],
    ['a whole number', field(z.int()), { f: 1.5 }, 'f: must be a whole number'],
    ['a boolean', field(z.boolean()), { f: 'yes' }, 'f: must be true or false'],
    ['an object', field(z.object({})), { f: [] }, 'f: must be an object'],
    ['an array', field(z.array(z.string())), { f: 'x' }, 'f: must be an array'],
    ['an element of an array', field(z.array(z.string())), { f: ['a', 1] }, 'f[1]: must be a string'],
    ['null given for a string', field(z.string()), { f: null }, 'f: must be a string'],
    ['a missing value', field(z.string()), {}, 'f: is required'],
    ['a missing enum, with the input', field(z.enum(['a', 'b'])), {}, 'f: is required'],
    ['a missing union', field(z.union([z.string(), z.int()])), {}, 'f: is required'],
    ['a number at least', field(z.number().min(1)), { f: 0 }, 'f: must be at least 1'],
    ['a number at most', field(z.int().max(10)), { f: 11 }, 'f: must be at most 10'],
    ['a number greater than', field(z.number().positive()), { f: 0 }, 'f: must be greater than 0'],
    ['a number less than', field(z.number().lt(5)), { f: 5 }, 'f: must be less than 5'],
    ['a multiple', field(z.int().multipleOf(5)), { f: 3 }, 'f: must be a multiple of 5'],
    ['an empty string', field(z.string().min(1)), { f: '' }, 'f: must not be empty'],
    ['a short string', field(z.string().min(3)), { f: 'ab' }, 'f: must be at least 3 characters long'],
    ['a long string', field(z.string().max(3)), { f: 'abcd' }, 'f: must be at most 3 characters long'],
    ['an exact length', field(z.string().length(4)), { f: 'x' }, 'f: must be exactly 4 characters long'],
    ['an empty array', field(z.array(z.int()).min(1)), { f: [] }, 'f: must not be empty'],
    ['a long array', field(z.array(z.int()).max(1)), { f: [1, 2] }, 'f: must have at most 1 item'],
    ['an enum', field(z.enum(['a', 'b', 'c'])), { f: 'd' }, 'f: must be one of a, b, c'],
    ['a literal', field(z.literal('on')), { f: 'off' }, 'f: must be on'],
    ['an enum with odd values', field(z.enum(['a b', ''])), { f: 'x' }, 'f: must be one of "a b", ""'],
    ['a union of types', field(z.union([z.string(), z.boolean()])), { f: 1 }, 'f: must be a string or true or false'],
    ['a union of literals', field(z.union([z.literal(0), z.literal(1)])), { f: 2 }, 'f: must be 0 or 1'],
    ['a union that got further in one form', field(z.union([z.string(), z.strictObject({ a: z.int() })])), { f: { a: 'x' } }, 'f.a: must be a number'],
    ['a discriminated union', z.discriminatedUnion('type', [z.object({ type: z.literal('a') }), z.object({ type: z.literal('b') })]), { type: 'c' }, 'type: must be one of a, b'],
    ['an email', field(z.email()), { f: 'x' }, 'f: must be an email address'],
    ['a URL', field(z.url()), { f: 'x' }, 'f: must be a URL'],
    ['a date-time', field(z.iso.datetime()), { f: 'x' }, 'f: must be an ISO 8601 date-time such as 2026-11-30T09:00:00Z'],
    ['a pattern', field(z.string().regex(/^\d+$/)), { f: 'x' }, 'f: must match the pattern /^\\d+$/'],
    ['a prefix', field(z.string().startsWith('sk-')), { f: 'x' }, 'f: must start with "sk-"'],
    ['a record key', z.record(z.string().regex(/^[a-z]+$/, 'use a-z'), z.int()), { A: 1 }, 'A: is not an allowed name: use a-z'],
    ['a refinement without a message', field(z.string().refine(() => false)), { f: 'x' }, 'f: is invalid'],
    ['something not allowed', field(z.never()), { f: 1 }, 'f: is not allowed'],
    ['an unknown key (config)', field(z.string()), { f: 'x', extra: 1 }, 'extra: unknown key'],
    ['a nested path', z.object({ a: z.object({ b: z.array(z.object({ c: z.string() })) }) }), { a: { b: [{ c: 1 }] } }, 'a.b[0].c: must be a string'],
    // Messages written in our schemas are in the user's words already: kept.
    ['a custom message', field(z.string().min(1, 'must be a non-empty string')), { f: '' }, 'f: must be a non-empty string'],
    ['a custom refinement', field(z.string().refine(() => false, 'must be nice')), { f: 'x' }, 'f: must be nice'],
    ['a custom type error', field(z.string('is required')), {}, 'f: is required'],
    ['a custom union message', field(z.union([z.string(), z.int()], 'must be a string or an integer')), { f: true }, 'f: must be a string or an integer'],
    // An empty message of our own says nothing: the issue is worded as if it had none.
    ['an empty custom type error', field(z.string({ error: () => '' })), { f: 1 }, 'f: must be a string'],
    ['an empty refinement message', field(z.string().refine(() => false, '')), { f: 'x' }, 'f: is invalid'],
    ['a blank size message', field(z.string().min(3, ' ')), { f: 'a' }, 'f: must be at least 3 characters long'],
  ]
  test.each(cases)('%s', (_name, schema, value, expected) => {
    const message = describe1(schema, value, { input: true })
    expect(message).toBe(expected)
    expect(message).not.toMatch(ZOD_WORDING)
  })

  test('without the input, a missing value is still known where zod says so', () => {
    expect(describe1(z.object({ f: z.string() }), {})).toBe('f: is required')
    expect(describe1(z.object({ f: z.union([z.string(), z.int()]) }), {})).toBe('f: is required')
  })

  test('request fields are "fields"; a prefix names where they are', () => {
    expect(describe1(z.strictObject({}), { x: 1 }, { noun: 'field' })).toBe('x: unknown field')
    const parsed = z.object({ lines: z.int().max(5) }).safeParse({ lines: 9 })
    expect(describeIssues(parsed.error!.issues, ['query'])).toEqual(['query.lines: must be at most 5'])
  })

  test('describeProblem: one issue without its path (a CLI flag)', () => {
    const parsed = z.object({ name: z.string().min(1) }).safeParse({ name: '' })
    expect(describeProblem(parsed.error!.issues[0]!)).toBe('must not be empty')
  })
})

describe('over HTTP, from a running gateway', () => {
  let world: World
  let gateway: RunningGateway
  beforeAll(async () => {
    world = await makeWorld()
    gateway = await world.start()
  })
  afterAll(async () => {
    if (gateway?.proc.exitCode === null) await gateway.stop()
    world?.stop()
  })

  const send = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
    return { status: response.status, body: (await response.json()) as any }
  }

  test("the spec's example, exactly", async () => {
    expect(await send('POST', '/api/message', { channel: 'myapp', chat_id: '1', content: '' })).toEqual({ status: 400, body: { error: { code: 'INVALID_REQUEST', message: 'content: must be a non-empty string' } } })
  })

  test('bodies, query strings and path parameters of several routes', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/agent', { message: 42 }, 'message: must be a string'],
      ['POST', '/api/agent', {}, 'message: is required'],
      ['POST', '/api/agent', { message: 'hi', stream: 'yes' }, 'stream: must be true or false'],
      ['POST', '/api/agent', { message: 'hi', extra: 1 }, 'extra: unknown field'],
      ['POST', '/api/cron/create', { schedule: '@daily', message: 'x', enabled: 'yes' }, 'enabled: must be true or false'],
      ['POST', '/api/cron/create', { schedule: 5, message: 'x' }, 'schedule: must be a string'],
      ['POST', '/api/message/sync', { channel: 'myapp', chat_id: '1', content: 'x', timeout_ms: 1.5 }, 'timeout_ms: must be a whole number'],
      ['POST', '/v1/chat/completions', { model: 'x', messages: 'hello' }, 'messages: must be an array'],
      ['GET', '/api/sessions?limit=0', undefined, 'query.limit: must be at least 1'],
    ]
    for (const [method, path, body, message] of cases) {
      const answer = await send(method, path, body)
      expect({ path, body, status: answer.status, code: answer.body.error?.code, message: answer.body.error?.message }).toEqual({ path, body, status: 400, code: 'INVALID_REQUEST', message })
    }
  })
})

describe('outside HTTP', () => {
  test('a config error names the key in plain words, and the gateway does not start (exit 78)', async () => {
    const home = homeWithConfig({ gateway: { prot: 1 }, agent: { maxSteps: true }, logging: { level: 'loud' } })
    const result = await runCli(['gateway'], { home })
    expect(result.code).toBe(ExitCode.CONFIG)
    expect(result.stderr).toContain('gateway.prot: unknown key')
    expect(result.stderr).toContain('agent.maxSteps: must be a number')
    expect(result.stderr).toContain('logging.level: must be one of silent, fatal, error, warn, info, debug, trace')
    expect(result.stderr).not.toMatch(ZOD_WORDING)
  })

  test('a CLI flag error names the flag in plain words (exit 2)', async () => {
    const result = await runCli(['cron', 'add', '--schedule', '@daily', '--message', 'x', '--name', ''])
    expect(result.code).toBe(ExitCode.USAGE)
    expect(result.stderr).toContain('--name: must not be empty')
    expect(result.stderr).not.toMatch(ZOD_WORDING)
  })

  test("a tool input the model got wrong is told in plain words, to the model and in the session's history", async () => {
    const s = makeAgentApp()
    try {
      s.fake.queue.push({ toolCalls: [{ name: 'time', input: { timezone: 5 } }] }, { text: 'Sorry.' })
      expect((await postAgent(s.app, { message: 'what time is it?' })).status).toBe(200)
      const told = s.fake.calls[1]!.body.messages.at(-1)
      expect(told).toMatchObject({ role: 'tool', content: 'Invalid input: timezone: must be a string' })
      const history = (await (await s.app.handle(new Request('http://localhost/api/sessions/default'))).json()) as any
      const result = history.session.messages.flatMap((m: any) => m.tool_results ?? [])[0]
      expect(result).toMatchObject({ name: 'time', output: 'Invalid input: timezone: must be a string', error: true })
    } finally {
      s.fake.stop()
    }
  })
})
