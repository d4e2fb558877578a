import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { editJsonTo, formatKeyPath, JsonEditError, parseKeyPath, setJsonValue, unsetJsonValue } from '../src/config/edit'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Path = (string | number)[]

describe('setJsonValue and unsetJsonValue change only the value at the path', () => {
  test('a three-line hand-written config stays three lines plus the change', () => {
    const text = '{ "gateway": { "port": 18790 },\n  "channels": { "telegram": { "token": "${TG_TOKEN}", "enabled": true } },\n  "agent": {"model": "openai/gpt-4o-mini"} }\n'
    const changed = setJsonValue(text, ['agent', 'model'], 'anthropic/claude-sonnet-4-5')
    expect(changed).toBe(text.replace('openai/gpt-4o-mini', 'anthropic/claude-sonnet-4-5'))
    expect(changed.split('\n')).toHaveLength(4)
    // A new key goes at the end of its object, on the line of its siblings, in their spacing.
    expect(setJsonValue(text, ['agent', 'maxSteps'], 12)).toBe(text.replace('"openai/gpt-4o-mini"}', '"openai/gpt-4o-mini", "maxSteps": 12}'))
    expect(setJsonValue(text, ['gateway', 'auth', 'token'], 'a-token-12345')).toBe(text.replace('18790 }', '18790, "auth": { "token": "a-token-12345" } }'))
    // `${VAR}` stays a reference: never its value.
    expect(unsetJsonValue(text, ['gateway', 'port'])).toBe(text.replace('{ "port": 18790 }', '{}'))
  })

  test('in a file with one key per line, a new key gets a line of its own at the indentation of its siblings', () => {
    const text = '{\n    "agent": {\n        "model": "openai/gpt-4o-mini"\n    },\n    "providers": {}\n}'
    expect(setJsonValue(text, ['agent', 'maxSteps'], 3)).toBe('{\n    "agent": {\n        "model": "openai/gpt-4o-mini",\n        "maxSteps": 3\n    },\n    "providers": {}\n}')
    expect(setJsonValue(text, ['providers', 'openai', 'apiKey'], 'sk-1')).toBe(
      '{\n    "agent": {\n        "model": "openai/gpt-4o-mini"\n    },\n    "providers": {\n        "openai": {\n            "apiKey": "sk-1"\n        }\n    }\n}',
    )
    expect(setJsonValue(text, ['logging'], { level: 'debug' })).toBe(text.replace('"providers": {}\n}', '"providers": {},\n    "logging": {\n        "level": "debug"\n    }\n}'))
  })

  test('tabs, CRLF line ends and compact files keep their style', () => {
    const tabs = '{\r\n\t"agent": {\r\n\t\t"model": "a/b"\r\n\t}\r\n}\r\n'
    expect(setJsonValue(tabs, ['agent', 'maxSteps'], 3)).toBe('{\r\n\t"agent": {\r\n\t\t"model": "a/b",\r\n\t\t"maxSteps": 3\r\n\t}\r\n}\r\n')
    expect(setJsonValue('{"agent":{"model":"a/b"}}', ['gateway', 'port'], 1234)).toBe('{"agent":{"model":"a/b"},"gateway":{"port":1234}}')
    expect(setJsonValue('{}\n', ['agent', 'model'], 'a/b')).toBe('{\n  "agent": {\n    "model": "a/b"\n  }\n}\n')
  })

  test('lists: an index replaces or removes one entry, the length appends', () => {
    const text = '{ "allowFrom": [1, "@me",   3] }'
    expect(setJsonValue(text, ['allowFrom', 1], '@you')).toBe('{ "allowFrom": [1, "@you",   3] }')
    expect(setJsonValue(text, ['allowFrom', 3], 4)).toBe('{ "allowFrom": [1, "@me",   3,   4] }')
    expect(unsetJsonValue(text, ['allowFrom', 0])).toBe('{ "allowFrom": ["@me",   3] }')
    expect(unsetJsonValue(text, ['allowFrom', 2])).toBe('{ "allowFrom": [1, "@me"] }')
    expect(() => setJsonValue(text, ['allowFrom', 7], 4)).toThrow('allowFrom has 3 entries, so [7] cannot be set; use [3] to add one')
  })

  test('a null on the way becomes the object the path needs; a string or number there is an error naming it', () => {
    expect(setJsonValue('{"gateway": {"auth": null}}', ['gateway', 'auth', 'token'], 'tok-12345678')).toBe('{"gateway": {"auth": { "token": "tok-12345678" }}}')
    expect(() => setJsonValue('{"agent": {"model": "a/b"}}', ['agent', 'model', 'primary'], 'c/d')).toThrow(JsonEditError)
    expect(() => setJsonValue('{"agent": {"model": "a/b"}}', ['agent', 'model', 'primary'], 'c/d')).toThrow('agent.model is a string, so it has no "primary"')
  })

  test('unset removes the key with its separator; duplicate keys all go; a missing key is null', () => {
    const text = '{\n  "a": 1,\n  "b": {"c": 2},\n  "d": 3\n}'
    expect(unsetJsonValue(text, ['a'])).toBe('{\n  "b": {"c": 2},\n  "d": 3\n}')
    expect(unsetJsonValue(text, ['d'])).toBe('{\n  "a": 1,\n  "b": {"c": 2}\n}')
    expect(unsetJsonValue(text, ['b', 'c'])).toBe('{\n  "a": 1,\n  "b": {},\n  "d": 3\n}')
    expect(unsetJsonValue('{"a": 1, "b": 2, "a": 3}', ['a'])).toBe('{"b": 2}')
    expect(unsetJsonValue(text, ['x'])).toBeNull()
    expect(unsetJsonValue(text, ['b', 'x', 'y'])).toBeNull()
  })

  test('editJsonTo (what gateway token --rotate and install use) edits only what differs', () => {
    const text = '{\n  "gateway": {"port": 1234},   "channels": {"telegram": {"token": "${TG_TOKEN}"}}\n}\n'
    expect(editJsonTo(text, { gateway: { port: 1234, auth: { token: 'new-token-456' } }, channels: { telegram: { token: '${TG_TOKEN}' } } })).toBe(
      text.replace('{"port": 1234}', '{"port": 1234, "auth": { "token": "new-token-456" }}'),
    )
    expect(editJsonTo(text, { channels: { telegram: { token: '${TG_TOKEN}' } } })).toBe('{\n  "channels": {"telegram": {"token": "${TG_TOKEN}"}}\n}\n')
  })
})

describe('key paths', () => {
  test('dots, list indices and quoted keys read and write back the same', () => {
    expect(parseKeyPath('channels.telegram.allowFrom[0]')).toEqual(['channels', 'telegram', 'allowFrom', 0])
    expect(parseKeyPath('pricing["openai/gpt-4.1"].input')).toEqual(['pricing', 'openai/gpt-4.1', 'input'])
    expect(parseKeyPath('mcp.servers.files.env.GITHUB_TOKEN')).toEqual(['mcp', 'servers', 'files', 'env', 'GITHUB_TOKEN'])
    expect(formatKeyPath(['pricing', 'openai/gpt-4.1', 'input'])).toBe('pricing["openai/gpt-4.1"].input')
    for (const bad of ['', 'a..b', 'a.', '.a', 'a[x]', 'a["x"y']) expect(() => parseKeyPath(bad)).toThrow(JsonEditError)
  })

  test('property: formatKeyPath and parseKeyPath are inverse', () => {
    const part = fc.oneof(fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !/^\d+$/.test(s)), fc.nat(20))
    fc.assert(fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), (path) => expect(parseKeyPath(formatKeyPath(path))).toEqual(path)))
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Property: random JSON configs written with random whitespace; a set or unset at a random path gives the
// expected document and leaves every byte outside the edited value (or, for a new key, outside its object) as it was.

const WHITESPACE = ['', ' ', '  ', '\n', '\n  ', '\t', '\r\n', ' \n\t ', '\n\n    ']
const safeKey = fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom('apiKey', 'a.b', 'x"y', 'back\\slash', 'ü', '${X}')).filter((k) => !/^\d+$/.test(k) && k !== '__proto__')
const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
  fc.string({ maxLength: 10 }),
  fc.constantFrom('${TG_TOKEN}', 'line\nbreak', 'quote"d', '$${literal}'),
)
const { value: jsonValue } = fc.letrec<{ value: Json; array: Json[]; object: Record<string, Json> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 4 }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(safeKey, tie('value'), { maxKeys: 4 }),
}))
const document = fc.dictionary(safeKey, jsonValue, { maxKeys: 6 })

type Spans = Map<string, { start: number; end: number }>
const keyOf = (path: Path) => JSON.stringify(path)

/** JSON text of `value` with whitespace from `ws()` between every token, and the span of every value. */
function render(value: Json, ws: () => string): { text: string; spans: Spans } {
  let text = ''
  const spans: Spans = new Map()
  const emit = (v: Json, path: Path) => {
    const start = text.length
    if (Array.isArray(v)) {
      text += '['
      v.forEach((item, i) => {
        text += (i ? ',' : '') + ws()
        emit(item, [...path, i])
        text += ws()
      })
      text += v.length ? ']' : ws() + ']'
    } else if (v !== null && typeof v === 'object') {
      text += '{'
      Object.entries(v).forEach(([k, item], i) => {
        text += (i ? ',' : '') + ws() + JSON.stringify(k) + ws() + ':' + ws()
        emit(item, [...path, k])
        text += ws()
      })
      text += Object.keys(v).length ? '}' : ws() + '}'
    } else text += JSON.stringify(v)
    spans.set(keyOf(path), { start, end: text.length })
  }
  text += ws()
  emit(value, [])
  text += ws()
  return { text, spans }
}

/** Every path in `value`, with what is there. */
function pathsOf(value: Json, path: Path = []): { path: Path; value: Json }[] {
  const out = [{ path, value }]
  if (Array.isArray(value)) value.forEach((item, i) => out.push(...pathsOf(item, [...path, i])))
  else if (value !== null && typeof value === 'object') for (const [k, item] of Object.entries(value)) out.push(...pathsOf(item, [...path, k]))
  return out
}

function parentOf(root: Json, path: Path): any {
  let node: any = root
  for (const part of path.slice(0, -1)) node = node[part]
  return node
}

/** Where two texts differ: [start, end) in `before`, [start, endAfter) in `after`. */
function changedRegion(before: string, after: string) {
  // Nothing changed (the same value set again): an empty region inside any span.
  if (before === after) return { start: Infinity, end: -Infinity, endAfter: -Infinity }
  let start = 0
  while (start < before.length && start < after.length && before[start] === after[start]) start++
  let tail = 0
  while (tail < before.length - start && tail < after.length - start && before[before.length - 1 - tail] === after[after.length - 1 - tail]) tail++
  return { start, end: before.length - tail, endAfter: after.length - tail }
}

describe('property: an edit keeps every other byte', () => {
  const setup = fc.record({ doc: document, wsChoices: fc.array(fc.nat(WHITESPACE.length - 1), { minLength: 1, maxLength: 64 }), pick: fc.nat(), newValue: jsonValue, newKey: safeKey })
  const written = ({ doc, wsChoices }: { doc: Json; wsChoices: number[] }) => {
    let i = 0
    return render(doc, () => WHITESPACE[wsChoices[i++ % wsChoices.length]!]!)
  }

  test('set of an existing value changes only its span', () => {
    fc.assert(
      fc.property(setup, (input) => {
        const { text, spans } = written(input)
        const targets = pathsOf(input.doc).filter((p) => p.path.length > 0)
        fc.pre(targets.length > 0)
        const { path } = targets[input.pick % targets.length]!
        const expected = structuredClone(input.doc) as any
        parentOf(expected, path)[path.at(-1)!] = input.newValue
        const result = setJsonValue(text, path, input.newValue)
        expect(JSON.stringify(JSON.parse(result))).toBe(JSON.stringify(expected))
        const span = spans.get(keyOf(path))!
        const region = changedRegion(text, result)
        expect(region.start).toBeGreaterThanOrEqual(span.start)
        expect(region.end).toBeLessThanOrEqual(span.end)
      }),
      { numRuns: 400 },
    )
  })

  test('a new key (and the objects on its way) is inserted inside its object, after the last member, and nothing is lost', () => {
    fc.assert(
      fc.property(setup, fc.array(safeKey, { maxLength: 2 }), (input, deeper) => {
        const { text, spans } = written(input)
        const objects = pathsOf(input.doc).filter((p) => p.value !== null && typeof p.value === 'object' && !Array.isArray(p.value))
        const { path: at, value: object } = objects[input.pick % objects.length]!
        fc.pre(!Object.hasOwn(object as object, input.newKey))
        const path = [...at, input.newKey, ...deeper]
        const expected = structuredClone(input.doc) as any
        const target = at.reduce((node: any, part) => node[part], expected)
        target[input.newKey] = deeper.reduceRight<Json>((inner, key) => ({ [key]: inner }), input.newValue)
        const result = setJsonValue(text, path, input.newValue)
        expect(JSON.stringify(JSON.parse(result))).toBe(JSON.stringify(expected))
        const span = spans.get(keyOf(at))!
        const region = changedRegion(text, result)
        expect(region.start).toBeGreaterThan(span.start)
        expect(region.end).toBeLessThan(span.end)
        // Into an object with members: only inserted, after the last member's value.
        const members = Object.keys(object as object)
        if (members.length) {
          expect(region.end).toBe(region.start)
          expect(region.start).toBeGreaterThanOrEqual(spans.get(keyOf([...at, members.at(-1)!]))!.end)
        }
      }),
      { numRuns: 400 },
    )
  })

  test('unset removes only the entry and its separator; its siblings stay byte for byte', () => {
    fc.assert(
      fc.property(setup, (input) => {
        const { text, spans } = written(input)
        const targets = pathsOf(input.doc).filter((p) => p.path.length > 0)
        fc.pre(targets.length > 0)
        const { path } = targets[input.pick % targets.length]!
        const expected = structuredClone(input.doc) as any
        const parent = parentOf(expected, path)
        if (Array.isArray(parent)) parent.splice(path.at(-1) as number, 1)
        else delete parent[path.at(-1)!]
        const result = unsetJsonValue(text, path)!
        expect(JSON.stringify(JSON.parse(result))).toBe(JSON.stringify(expected))
        const parentSpan = spans.get(keyOf(path.slice(0, -1)))!
        const region = changedRegion(text, result)
        expect(region.start).toBeGreaterThanOrEqual(parentSpan.start)
        expect(region.end).toBeLessThanOrEqual(parentSpan.end)
        // Only deleted, unless the container became empty ({} or []).
        if (JSON.stringify(parent) !== '{}' && JSON.stringify(parent) !== '[]') expect(region.endAfter).toBe(region.start)
        // Every sibling's text is still there, unchanged.
        const siblings = pathsOf(input.doc).filter((p) => p.path.length === path.length && keyOf(p.path.slice(0, -1)) === keyOf(path.slice(0, -1)) && keyOf(p.path) !== keyOf(path))
        for (const sibling of siblings) {
          const { start, end } = spans.get(keyOf(sibling.path))!
          expect(result).toContain(text.slice(start, end))
        }
      }),
      { numRuns: 400 },
    )
  })

  test('editJsonTo reaches any other document, and a document it already equals is returned byte for byte', () => {
    fc.assert(
      fc.property(setup, document, (input, next) => {
        const { text } = written(input)
        expect(JSON.stringify(JSON.parse(editJsonTo(text, next)))).toBe(JSON.stringify(mergedOrder(input.doc as Record<string, Json>, next)))
        expect(editJsonTo(text, structuredClone(input.doc) as Record<string, Json>)).toBe(text)
      }),
      { numRuns: 300 },
    )
  })
})

/** `next`, with the keys it shares with `before` in `before`'s order and its new keys after them (what a minimal edit keeps). */
function mergedOrder(before: Json, next: Json): Json {
  const isObject = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (!isObject(before) || !isObject(next)) return next
  const out: Record<string, Json> = {}
  for (const key of Object.keys(before)) if (Object.hasOwn(next, key)) out[key] = mergedOrder(before[key]!, next[key]!)
  for (const key of Object.keys(next)) if (!Object.hasOwn(before, key)) out[key] = next[key]!
  return out
}
