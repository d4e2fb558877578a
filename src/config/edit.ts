import { realpathSync } from 'node:fs'
import { dirname } from 'node:path'
import { ensurePrivateDir } from '../storage/private-files'
import { writeFileAtomic } from '../util/atomic-write'

// Minimal edits of a JSON config file's text: only the value at a key path changes, a new key goes at the end of
// its object with the indentation of its siblings, and every other byte — key order, layout, `${VAR}` references
// — stays as the user wrote it. Re-serialising the document would reformat a hand-written file on every change.

/** A key path: object keys and array indices, as `parseKeyPath` reads `channels.telegram.allowFrom[0]`. */
export type KeyPath = readonly (string | number)[]

type Span = { start: number; end: number }
export type JsonNode =
  | (Span & { kind: 'object'; members: JsonMember[] })
  | (Span & { kind: 'array'; items: JsonNode[] })
  | (Span & { kind: 'scalar' })
export interface JsonMember {
  key: string
  keyStart: number
  keyEnd: number
  value: JsonNode
}

/** Why an edit cannot be made, in the user's terms (the key path, not offsets). */
export class JsonEditError extends Error {
  override readonly name = 'JsonEditError'
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y

/** The syntax tree of a JSON text, with the offsets of every key and value. Throws on text that is not JSON. */
export function parseJsonTree(text: string): JsonNode {
  let pos = 0
  const skip = () => {
    while (pos < text.length && (text[pos] === ' ' || text[pos] === '\t' || text[pos] === '\n' || text[pos] === '\r')) pos++
  }
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${pos}`)
  }
  const match = (re: RegExp) => {
    re.lastIndex = pos
    const m = re.exec(text)
    if (!m) fail('unexpected character')
    pos += m![0].length
    return m![0]
  }
  const value = (depth: number): JsonNode => {
    if (depth > 512) fail('nesting too deep')
    skip()
    const start = pos
    const c = text[pos]
    if (c === '{') {
      pos++
      const members: JsonMember[] = []
      skip()
      if (text[pos] === '}') return { kind: 'object', start, end: ++pos, members }
      for (;;) {
        skip()
        const keyStart = pos
        const key = JSON.parse(match(STRING)) as string
        const keyEnd = pos
        skip()
        if (text[pos++] !== ':') fail('expected ":"')
        members.push({ key, keyStart, keyEnd, value: value(depth + 1) })
        skip()
        if (text[pos] === ',') pos++
        else if (text[pos] === '}') return { kind: 'object', start, end: ++pos, members }
        else fail('expected "," or "}"')
      }
    }
    if (c === '[') {
      pos++
      const items: JsonNode[] = []
      skip()
      if (text[pos] === ']') return { kind: 'array', start, end: ++pos, items }
      for (;;) {
        items.push(value(depth + 1))
        skip()
        if (text[pos] === ',') pos++
        else if (text[pos] === ']') return { kind: 'array', start, end: ++pos, items }
        else fail('expected "," or "]"')
      }
    }
    if (c === '"') match(STRING)
    else if (text.startsWith('true', pos)) pos += 4
    else if (text.startsWith('false', pos)) pos += 5
    else if (text.startsWith('null', pos)) pos += 4
    else match(NUMBER)
    return { kind: 'scalar', start, end: pos }
  }
  const root = value(0)
  skip()
  if (pos !== text.length) fail('unexpected text after the value')
  return root
}

/**
 * `channels.telegram.allowFrom[0]` → `['channels', 'telegram', 'allowFrom', 0]`. A key with dots or brackets in
 * it is written as a JSON string in brackets: `pricing["openai/gpt-4.1"].input`.
 */
export function parseKeyPath(path: string): (string | number)[] {
  const out: (string | number)[] = []
  let pos = 0
  const bad = (why: string): never => {
    throw new JsonEditError(`${JSON.stringify(path)} is not a key path (${why}); write keys with dots, e.g. agent.model, channels.telegram.allowFrom[0], pricing["openai/gpt-4.1"].input`)
  }
  if (path === '') bad('it is empty')
  while (pos < path.length) {
    if (path[pos] === '[') {
      const close = path.indexOf(']', pos)
      const inner = close < 0 ? '' : path.slice(pos + 1, close)
      if (/^\d+$/.test(inner)) out.push(Number(inner))
      else {
        STRING.lastIndex = pos + 1
        const quoted = STRING.exec(path)
        if (!quoted || path[pos + 1 + quoted[0].length] !== ']') bad(`after "[" comes an index or a quoted key`)
        out.push(JSON.parse(quoted![0]) as string)
        pos = pos + 1 + quoted![0].length + 1
        if (pos < path.length && path[pos] !== '.' && path[pos] !== '[') bad(`"." or "[" must follow "]"`)
        if (path[pos] === '.') pos++
        continue
      }
      pos = close + 1
      if (pos < path.length && path[pos] !== '.' && path[pos] !== '[') bad(`"." or "[" must follow "]"`)
      if (path[pos] === '.') pos++
      continue
    }
    let end = pos
    while (end < path.length && path[end] !== '.' && path[end] !== '[') end++
    if (end === pos) bad('an empty key')
    out.push(path.slice(pos, end))
    pos = end
    if (path[pos] === '.') {
      pos++
      if (pos === path.length) bad('it ends with "."')
    }
  }
  return out
}

/** `['pricing', 'openai/gpt-4.1', 'input']` → `pricing["openai/gpt-4.1"].input`: what parseKeyPath reads back. */
export function formatKeyPath(path: KeyPath): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (/^[A-Za-z0-9_$@/:*-]+$/.test(part) && !/^\d+$/.test(part)) out += out ? `.${part}` : part
    else out += `[${JSON.stringify(part)}]`
  }
  return out
}

/** The last member named `key` (JSON.parse keeps the last of duplicate keys, so that is the one in effect). */
const memberOf = (node: JsonNode & { kind: 'object' }, key: string) => node.members.findLast((m) => m.key === key)

/** A digit-only key on an array is its index, so `allowFrom.0` means `allowFrom[0]`. */
const indexOf = (part: string | number) => (typeof part === 'number' ? part : /^\d+$/.test(part) ? Number(part) : null)

function kindOf(node: JsonNode, text: string): string {
  if (node.kind !== 'scalar') return node.kind === 'object' ? 'an object' : 'a list'
  const c = text[node.start]
  return c === '"' ? 'a string' : c === 't' || c === 'f' ? 'a boolean' : c === 'n' ? 'null' : 'a number'
}

/** The node at `path`, or how far the path exists: the deepest node found and the index of the first part missing. */
function locate(text: string, root: JsonNode, path: KeyPath): { node: JsonNode; depth: number } {
  let node = root
  for (const [depth, part] of path.entries()) {
    if (node.kind === 'scalar') {
      // null stands for "not set" here: setting below it replaces it with an object (see setJsonValue).
      if (text.startsWith('null', node.start)) return { node, depth }
      throw new JsonEditError(`${formatKeyPath(path.slice(0, depth))} is ${kindOf(node, text)}, so it has no ${JSON.stringify(String(part))}; set ${formatKeyPath(path.slice(0, depth))} as a whole (with --json for an object)`)
    }
    if (node.kind === 'object' && typeof part === 'number') {
      throw new JsonEditError(`${formatKeyPath(path.slice(0, depth)) || 'the config'} is an object, not a list: name a key instead of [${part}]`)
    }
    let next: JsonNode | undefined
    if (node.kind === 'object') next = memberOf(node, part as string)?.value
    else {
      const index = indexOf(part)
      if (index === null) throw new JsonEditError(`${formatKeyPath(path.slice(0, depth))} is a list: give an index, e.g. ${formatKeyPath([...path.slice(0, depth), 0])}`)
      next = node.items[index]
    }
    if (!next) return { node, depth }
    node = next
  }
  return { node, depth: path.length }
}

/** The value at `path` of a JSON text, or undefined when it is not there. */
export function getAtPath(value: unknown, path: KeyPath): unknown {
  let node = value
  for (const part of path) {
    if (Array.isArray(node)) {
      const index = indexOf(part)
      node = index === null ? undefined : node[index]
    } else if (node !== null && typeof node === 'object' && typeof part === 'string' && Object.hasOwn(node, part)) node = (node as Record<string, unknown>)[part]
    else return undefined
  }
  return node
}

interface Style {
  eol: string
  /** one level of indentation */
  unit: string
  /** `": "` or `":"`, and `", "` or `","`, for values written on one line */
  colon: string
  comma: string
}

function styleOf(text: string, root: JsonNode): Style {
  const eol = text.includes('\r\n') ? '\r\n' : '\n'
  let unit = '  '
  const first = root.kind === 'object' ? root.members[0] : undefined
  if (first && lineOf(text, first.keyStart) !== lineOf(text, root.start)) {
    const indent = indentAt(text, first.keyStart)
    if (indent) unit = indent
  }
  // A document without any whitespace between tokens is written compactly; keep it that way.
  let spaced = false
  let members = 0
  const walk = (node: JsonNode) => {
    if (spaced) return
    if (node.kind === 'object') {
      for (const m of node.members) {
        members++
        if (text.slice(m.keyEnd, m.value.start) !== ':') spaced = true
        walk(m.value)
      }
    } else if (node.kind === 'array') node.items.forEach(walk)
  }
  walk(root)
  if (!members) spaced = true
  return { eol, unit, colon: spaced ? ': ' : ':', comma: spaced ? ', ' : ',' }
}

const lineOf = (text: string, pos: number) => text.lastIndexOf('\n', pos - 1)
/** The whitespace at the start of the line that `pos` is on. */
function indentAt(text: string, pos: number): string {
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1
  return /^[ \t]*/.exec(text.slice(lineStart, pos))![0]
}

/** A value on one line: `{ "a": 1, "b": [2, 3] }` in a spaced file, `{"a":1,"b":[2,3]}` in a compact one. */
function renderInline(value: unknown, style: Style): string {
  if (Array.isArray(value)) return value.length ? `[${value.map((v) => renderInline(v, style)).join(style.comma)}]` : '[]'
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    if (!entries.length) return '{}'
    const inner = entries.map(([k, v]) => `${JSON.stringify(k)}${style.colon}${renderInline(v, style)}`).join(style.comma)
    return style.colon === ':' ? `{${inner}}` : `{ ${inner} }`
  }
  return JSON.stringify(value)
}

/** A value over several lines, its inner lines indented one unit deeper than `indent`, the line it starts on. */
function renderBlock(value: unknown, indent: string, style: Style): string {
  const inner = indent + style.unit
  if (Array.isArray(value)) {
    if (!value.length) return '[]'
    return `[${style.eol}${value.map((v) => inner + renderBlock(v, inner, style)).join(`,${style.eol}`)}${style.eol}${indent}]`
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    if (!entries.length) return '{}'
    return `{${style.eol}${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}${style.colon}${renderBlock(v, inner, style)}`).join(`,${style.eol}`)}${style.eol}${indent}}`
  }
  return JSON.stringify(value)
}

/** Whether a container's entries are written one per line (its first entry is not on the line of its bracket). */
function isMultiLine(text: string, node: JsonNode & { kind: 'object' | 'array' }): boolean {
  const first = node.kind === 'object' ? node.members[0]?.keyStart : node.items[0]?.start
  return first === undefined ? text.slice(node.start, node.end).includes('\n') : lineOf(text, first) !== lineOf(text, node.start)
}

/** `value` nested under the keys of `rest`: what a missing part of a path is created as. */
function nest(rest: KeyPath, value: unknown, path: KeyPath): unknown {
  let out = value
  for (let i = rest.length - 1; i >= 0; i--) {
    const part = rest[i]!
    if (typeof part === 'number') {
      if (part !== 0) throw new JsonEditError(`${formatKeyPath(path.slice(0, path.length - rest.length + i))} does not exist, so [${part}] cannot be set; start with [0] or set the whole list`)
      out = [out]
    } else out = { [part]: out }
  }
  return out
}

const splice = (text: string, start: number, end: number, insert: string) => text.slice(0, start) + insert + text.slice(end)

/**
 * Sets the value at `path` in a JSON text and returns the new text. An existing value is replaced in place; a
 * missing key is added at the end of its object (missing objects on the way are created), a list index equal to
 * the list's length appends. Everything else in the text is left byte for byte as it was.
 */
export function setJsonValue(text: string, path: KeyPath, value: unknown): string {
  if (value === undefined) throw new JsonEditError('there is no value to set')
  const root = parseJsonTree(text)
  if (!path.length) throw new JsonEditError('a key path is needed')
  const style = styleOf(text, root)
  const { node, depth } = locate(text, root, path)

  if (depth === path.length) {
    // Replace in place: a value that was on one line stays on one line; one written over several lines, or a
    // scalar becoming an object in a multi-line object, is written over several lines at the key's indentation.
    const wasMultiLine = text.slice(node.start, node.end).includes('\n')
    const parent = locate(text, root, path.slice(0, -1)).node as JsonNode & { kind: 'object' | 'array' }
    const block = node.kind === 'scalar' ? isMultiLine(text, parent) : wasMultiLine
    return splice(text, node.start, node.end, block ? renderBlock(value, indentAt(text, node.start), style) : renderInline(value, style))
  }

  if (node.kind === 'scalar') {
    // A null on the way, e.g. "auth": null when setting gateway.auth.token: it becomes the missing part.
    const parent = locate(text, root, path.slice(0, depth - 1)).node as JsonNode & { kind: 'object' | 'array' }
    const nested = nest(path.slice(depth), value, path)
    return splice(text, node.start, node.end, isMultiLine(text, parent) ? renderBlock(nested, indentAt(text, node.start), style) : renderInline(nested, style))
  }
  const container = node
  const part = path[depth]!
  if (container.kind === 'array') {
    const index = indexOf(part)!
    if (index !== container.items.length) {
      throw new JsonEditError(`${formatKeyPath(path.slice(0, depth))} has ${container.items.length} entries, so [${index}] cannot be set; use [${container.items.length}] to add one`)
    }
  }
  const newValue = nest(path.slice(depth + 1), value, path)
  const entryText = (indent: string, block: boolean, colon: string) => {
    const rendered = block ? renderBlock(newValue, indent, style) : renderInline(newValue, style)
    return container.kind === 'object' ? `${JSON.stringify(part)}${colon}${rendered}` : rendered
  }
  const entries: (JsonNode | JsonMember)[] = container.kind === 'object' ? container.members : container.items
  const startOf = (e: JsonNode | JsonMember) => ('keyStart' in e ? e.keyStart : e.start)
  const endOf = (e: JsonNode | JsonMember) => ('keyStart' in e ? e.value.end : e.end)
  const last = entries.at(-1)

  if (!last) {
    // An empty object or list: opened over several lines where its own key sits in a one-per-line object or
    // list (and always at the top level: "{}" becomes a file of its own), else kept on one line.
    const [open, close] = container.kind === 'object' ? ['{', '}'] : ['[', ']']
    const parent = depth > 0 ? (locate(text, root, path.slice(0, depth - 1)).node as JsonNode & { kind: 'object' | 'array' }) : null
    const multiLine = !parent || isMultiLine(text, parent)
    if (!multiLine) {
      const inline = entryText('', false, style.colon)
      return splice(text, container.start, container.end, style.colon === ':' ? `${open}${inline}${close}` : container.kind === 'object' ? `{ ${inline} }` : `[${inline}]`)
    }
    const indent = indentAt(text, container.start)
    const inner = indent + style.unit
    return splice(text, container.start, container.end, `${open}${style.eol}${inner}${entryText(inner, true, style.colon)}${style.eol}${indent}${close}`)
  }

  // After the last entry, in the layout of its siblings: one per line at their indentation, or on their line.
  const colon = 'keyStart' in last ? copiedColon(text, last) : style.colon
  if (isMultiLine(text, container)) {
    const indent = indentAt(text, startOf(last))
    return splice(text, endOf(last), endOf(last), `,${style.eol}${indent}${entryText(indent, true, colon)}`)
  }
  const previous = entries.at(-2)
  const separator = previous ? text.slice(endOf(previous), startOf(last)) : style.comma
  return splice(text, endOf(last), endOf(last), `${separator.includes('\n') ? style.comma : separator}${entryText('', false, colon)}`)
}

/** The `": "` between a sibling's key and value, so a new key looks like its neighbours. */
function copiedColon(text: string, member: JsonMember): string {
  const between = text.slice(member.keyEnd, member.value.start)
  return between.includes('\n') ? ': ' : between
}

/**
 * Removes the key (or list entry) at `path` from a JSON text; null when it is not there. Its neighbours and the
 * rest of the text stay as they were: the entry goes with the comma and whitespace that separated it.
 */
export function unsetJsonValue(text: string, path: KeyPath): string | null {
  if (!path.length) throw new JsonEditError('a key path is needed')
  let out = text
  let removed = false
  // Duplicate keys: every one goes, or an earlier one would take effect.
  for (;;) {
    const root = parseJsonTree(out)
    const { node, depth } = locate(out, root, path)
    if (depth !== path.length) return removed ? out : null
    const parent = locate(out, root, path.slice(0, -1)).node as JsonNode & { kind: 'object' | 'array' }
    const part = path.at(-1)!
    const entries: { start: number; end: number }[] =
      parent.kind === 'object' ? parent.members.map((m) => ({ start: m.keyStart, end: m.value.end })) : parent.items.map((n) => ({ start: n.start, end: n.end }))
    const index = parent.kind === 'object' ? parent.members.findLastIndex((m) => m.key === part) : entries.findIndex((e) => e.start === node.start)
    const entry = entries[index]!
    if (entries.length === 1) out = splice(out, parent.start, parent.end, parent.kind === 'object' ? '{}' : '[]')
    else if (index < entries.length - 1) out = splice(out, entry.start, entries[index + 1]!.start, '')
    else out = splice(out, entries[index - 1]!.end, entry.end, '')
    removed = true
    if (parent.kind === 'array') return out
  }
}

/** Whether `a` and `b` are the same JSON value. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]))
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  return keysA.length === keysB.length && keysA.every((key) => Object.hasOwn(b, key) && jsonEqual((a as any)[key], (b as any)[key]))
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * Edits `text` so that it parses to `next`, touching only what differs: keys that changed are replaced, new keys
 * added at the end of their objects, removed keys taken out. Lists that differ are replaced whole.
 */
export function editJsonTo(text: string, next: Record<string, unknown>): string {
  let out = text
  const visit = (before: unknown, after: unknown, path: (string | number)[]) => {
    if (isPlainObject(before) && isPlainObject(after)) {
      for (const key of Object.keys(before)) if (!Object.hasOwn(after, key) || after[key] === undefined) out = unsetJsonValue(out, [...path, key]) ?? out
      for (const [key, value] of Object.entries(after)) {
        if (value === undefined) continue
        if (Object.hasOwn(before, key)) visit(before[key], value, [...path, key])
        else out = setJsonValue(out, [...path, key], value)
      }
    } else if (!jsonEqual(before, after)) out = setJsonValue(out, path, after)
  }
  visit(JSON.parse(text), next, [])
  return out
}

/**
 * Writes a config file's new text atomically with mode 0600, creating its directory (0700) if needed. A symlink
 * is followed: the file it points to is replaced, the link stays.
 */
export function writeConfigText(path: string, text: string) {
  let target = path
  try {
    target = realpathSync(path)
  } catch {}
  ensurePrivateDir(dirname(target))
  writeFileAtomic(target, text, { mode: 0o600 })
}
