/**
 * Telegram shows formatting only through its own markup, and the models write Markdown. This turns the
 * Markdown they write into Telegram's HTML parse mode, and splits the result into messages Telegram accepts.
 *
 * No Markdown parser ships with the gateway, so this is a small one of its own: lines are read as blocks
 * (fenced code, blockquotes, headings, list items, text), each text line is tokenized (backslash escapes, code
 * spans, links, bare URLs, delimiter runs) and emphasis is matched with CommonMark's delimiter rules. The text
 * is the model's, so it is untrusted: everything is escaped, the only tags are ones this file writes (always
 * closed, in order), and a link is made only to http(s) and tg: URLs.
 */

/** Telegram's limit for one message: characters (UTF-16 code units) of the text after entities parsing. */
export const TELEGRAM_MAX_TEXT = 4096

export const escapeHtml = (text: string) => text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'))
const escapeAttribute = (text: string) => escapeHtml(text).replace(/"/g, '&quot;')

/** The language of a code fence that becomes `class="language-…"`; any other info string is not a fence. */
const FENCE_LANGUAGE = /^[\w+#.-]{1,32}$/
const FENCE_OPEN = /^([ \t]*)(`{3,}|~{3,})(.*)$/
const FENCE_CLOSE = /^[ \t]*(`{3,}|~{3,})[ \t]*$/
/** one or more quote markers: Telegram does not nest quotes, so `> > x` is one quote */
const QUOTE = /^(?: {0,3}> ?)+/
const HEADING_START = /^ {0,3}#{1,6}[ \t]+/
const LIST_ITEM = /^([ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+)(.*)$/

/** Markdown as the models write it → Telegram HTML (see the file's comment). */
export function markdownToTelegramHtml(markdown: string): string {
  return renderBlocks(markdown.replace(/\r\n?/g, '\n').split('\n'), false)
}

/** Renders lines as blocks; the line breaks of the text are kept as they are (a chat shows them as written). */
function renderBlocks(lines: string[], inQuote: boolean): string {
  const out: string[] = []
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!
    const fence = FENCE_OPEN.exec(line)
    const language = fence?.[3]!.trim() ?? ''
    if (fence && (language === '' || FENCE_LANGUAGE.test(language))) {
      const [, indent, marker] = fence as unknown as [string, string, string]
      const body: string[] = []
      let j = i + 1
      for (; j < lines.length; j++) {
        const close = FENCE_CLOSE.exec(lines[j]!)
        if (close && close[1]![0] === marker[0] && close[1]!.length >= marker.length) break
        body.push(stripIndent(lines[j]!, indent.length))
      }
      // An unclosed fence runs to the end, as in CommonMark.
      out.push(codeBlock(body.join('\n'), language, inQuote))
      i = j + 1
      continue
    }
    if (QUOTE.test(line)) {
      const inner: string[] = []
      for (; i < lines.length; i++) {
        const quoted = QUOTE.exec(lines[i]!)
        if (!quoted) break
        inner.push(lines[i]!.slice(quoted[0].length))
      }
      const rendered = renderBlocks(inner, true)
      // Telegram does not nest quotes (QUOTE takes all the markers of a line; this is only a guard).
      out.push(inQuote || rendered.trim() === '' ? rendered : `<blockquote>${rendered}</blockquote>`)
      continue
    }
    const heading = headingText(line)
    if (heading) out.push(`<b>${renderInline(heading)}</b>`)
    else {
      // A list keeps its bullet or number as text; only what follows it is Markdown.
      const item = LIST_ITEM.exec(line)
      out.push(item ? escapeHtml(item[1]!) + renderInline(item[2]!) : renderInline(line))
    }
    i++
  }
  return out.join('\n')
}

/** The text of an ATX heading (`## Title ##` → "Title"), or null. Not a regular expression: those backtrack quadratically here. */
function headingText(line: string): string | null {
  const start = HEADING_START.exec(line)
  if (!start) return null
  let text = line.slice(start[0].length).trimEnd()
  const closing = text.length - runLengthBack(text, '#')
  // A closing run of # counts only after a space (`# C#` keeps its #).
  if (closing < text.length && (closing === 0 || text[closing - 1] === ' ' || text[closing - 1] === '\t')) text = text.slice(0, closing).trimEnd()
  return text.trim() === '' ? null : text
}

function runLengthBack(text: string, char: string): number {
  let start = text.length
  while (start > 0 && text[start - 1] === char) start--
  return text.length - start
}

function stripIndent(line: string, width: number): string {
  let cut = 0
  while (cut < width && (line[cut] === ' ' || line[cut] === '\t')) cut++
  return line.slice(cut)
}

function codeBlock(code: string, language: string, inQuote: boolean): string {
  if (code === '') return ''
  // Telegram lets no other entity (a pre) into a blockquote: there, a code block is code text.
  if (inQuote) return `<code>${escapeHtml(code)}</code>`
  if (language) return `<pre><code class="language-${escapeAttribute(language)}">${escapeHtml(code)}</code></pre>`
  return `<pre>${escapeHtml(code)}</pre>`
}

type Delimiter = {
  kind: 'delim'
  char: '*' | '_' | '~'
  /** characters of the run not (yet) used by a match */
  count: number
  /** the run's length as written (CommonMark's "rule of 3") */
  length: number
  canOpen: boolean
  canClose: boolean
  /** tags this run opens / closes, in the order they were matched (innermost first) */
  opens: string[]
  closes: string[]
}
type Inline = { kind: 'text'; text: string } | { kind: 'html'; html: string } | Delimiter

const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]/
const isWhitespace = (c: string | undefined) => c === undefined || /\s/u.test(c)
const isPunctuation = (c: string | undefined) => c !== undefined && /[\p{P}\p{S}]/u.test(c)
const isAlphanumeric = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}]/u.test(c)

/**
 * Bounds on the work for one line, so that hostile text costs linear time (what goes past them stays text):
 * how many openers of each delimiter wait for a closer (the oldest goes first; this also bounds how deep
 * emphasis nests, and so the tags each message reopens after a cut), how long a link's text and URL may be.
 */
const OPENER_SEARCH_DEPTH = 32
const MAX_LINK_TEXT = 500
const MAX_URL = 2048

/** One line of text: code spans, links, bare URLs and emphasis. Inside a link's text, no links and no code entities. */
function renderInline(text: string, inLink = false): string {
  const nodes: Inline[] = []
  const backticks = new BacktickRuns(text)
  let buffer = ''
  const flush = () => {
    if (buffer) nodes.push({ kind: 'text', text: buffer })
    buffer = ''
  }
  for (let p = 0; p < text.length; ) {
    const c = text[p]!
    if (c === '\\' && ASCII_PUNCTUATION.test(text[p + 1] ?? '')) {
      buffer += text[p + 1]
      p += 2
      continue
    }
    if (c === '`') {
      const run = runLength(text, p, '`')
      const close = backticks.find(p + run, run)
      if (close < 0) {
        buffer += '`'.repeat(run)
        p += run
        continue
      }
      let code = text.slice(p + run, close)
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '') code = code.slice(1, -1)
      flush()
      nodes.push({ kind: 'html', html: inLink ? escapeHtml(code) : `<code>${escapeHtml(code)}</code>` })
      p = close + run
      continue
    }
    if (!inLink && (c === '[' || (c === '!' && text[p + 1] === '['))) {
      const link = parseLink(text, p, backticks)
      if (link) {
        flush()
        nodes.push({ kind: 'html', html: link.html })
        p = link.end
        continue
      }
    }
    if ((c === 'h' || c === 'H') && !isAlphanumeric(text[p - 1])) {
      // A bare URL stays as it is (Telegram links it itself): no emphasis inside it.
      const url = bareUrlLength(text, p)
      if (url) {
        buffer += text.slice(p, p + url)
        p += url
        continue
      }
    }
    if (c === '*' || c === '_' || c === '~') {
      const run = runLength(text, p, c)
      const before = text[p - 1]
      const after = text[p + run]
      if (c === '~' && run !== 2) {
        // A single ~ is "about" (~5 min), not strikethrough.
        buffer += c.repeat(run)
        p += run
        continue
      }
      const leftFlanking = !isWhitespace(after) && (!isPunctuation(after) || isWhitespace(before) || isPunctuation(before))
      const rightFlanking = !isWhitespace(before) && (!isPunctuation(before) || isWhitespace(after) || isPunctuation(after))
      // Never inside a word, for * as for _: 2*3*4 and snake_case_name stay as written.
      const canOpen = c === '~' ? leftFlanking : leftFlanking && (!rightFlanking || isPunctuation(before))
      const canClose = c === '~' ? rightFlanking : rightFlanking && (!leftFlanking || isPunctuation(after))
      flush()
      nodes.push({ kind: 'delim', char: c, count: run, length: run, canOpen, canClose, opens: [], closes: [] })
      p += run
      continue
    }
    buffer += c
    p++
  }
  flush()
  matchEmphasis(nodes)
  let html = ''
  for (const node of nodes) {
    if (node.kind === 'text') html += escapeHtml(node.text)
    else if (node.kind === 'html') html += node.html
    else {
      // A run closes from its start and opens from its end: what is left of it stays as text in between.
      html += node.closes.map((tag) => `</${tag}>`).join('')
      html += escapeHtml(node.char.repeat(node.count))
      html += node.opens.toReversed().map((tag) => `<${tag}>`).join('')
    }
  }
  return html
}

/**
 * CommonMark's emphasis matching, with a stack per delimiter character: a closer takes the nearest opener it
 * may pair with; delimiters between the two can no longer open. Matches are therefore properly nested, and
 * the tags balanced whatever the text.
 */
function matchEmphasis(nodes: Inline[]) {
  const openers: Record<Delimiter['char'], number[]> = { '*': [], _: [], '~': [] }
  nodes.forEach((node, index) => {
    if (node.kind !== 'delim') return
    if (node.canClose) {
      const stack = openers[node.char]
      while (node.count > 0) {
        let found = -1
        for (let k = stack.length - 1; k >= 0; k--) {
          const opener = nodes[stack[k]!] as Delimiter
          if (node.char !== '~' && (opener.canClose || node.canOpen) && (opener.length + node.length) % 3 === 0 && !(opener.length % 3 === 0 && node.length % 3 === 0)) continue
          found = k
          break
        }
        if (found < 0) break
        const openerIndex = stack[found]!
        const opener = nodes[openerIndex] as Delimiter
        const use = node.char === '~' ? 2 : opener.count >= 2 && node.count >= 2 ? 2 : 1
        const tag = node.char === '~' ? 's' : use === 2 ? 'b' : 'i'
        opener.count -= use
        node.count -= use
        opener.opens.push(tag)
        node.closes.push(tag)
        // Whatever opened in between can no longer close outside this pair.
        for (const char of ['*', '_', '~'] as const) {
          const other = openers[char]
          while (other.length && other[other.length - 1]! > openerIndex) other.pop()
        }
        if (opener.count === 0) stack.splice(found, 1)
      }
    }
    if (node.canOpen && node.count > 0) {
      const stack = openers[node.char]
      stack.push(index)
      if (stack.length > OPENER_SEARCH_DEPTH) stack.shift()
    }
  })
}

function runLength(text: string, at: number, char: string): number {
  let end = at
  while (text[end] === char) end++
  return end - at
}

/** Finds closing backtick runs; a length found nowhere after one place is not looked for again (linear time). */
class BacktickRuns {
  private readonly missing = new Map<number, number>()
  constructor(private readonly text: string) {}

  /** Where a run of exactly `length` backticks starts at or after `from`, or -1. */
  find(from: number, length: number): number {
    if ((this.missing.get(length) ?? Infinity) <= from) return -1
    for (let p = this.text.indexOf('`', from); p >= 0; p = this.text.indexOf('`', p)) {
      const run = runLength(this.text, p, '`')
      if (run === length) return p
      p += run
    }
    this.missing.set(length, Math.min(from, this.missing.get(length) ?? Infinity))
    return -1
  }
}

const BARE_URL = new RegExp(`https?://[^\\s<>]{1,${MAX_URL}}`, 'iy')

/** The length of an http(s) URL at `at` (without trailing punctuation that ends a sentence), or 0. */
function bareUrlLength(text: string, at: number): number {
  BARE_URL.lastIndex = at
  const match = BARE_URL.exec(text)
  if (!match) return 0
  const url = match[0]
  // "(see https://x.y/a_(b))." keeps the ) that closes one in the URL, not the one that ends the sentence.
  let unclosed = 0
  for (const char of url) unclosed += char === ')' ? 1 : char === '(' ? -1 : 0
  let end = url.length
  for (;;) {
    const last = url[end - 1]!
    if (/[.,:;!?'"*_~]/.test(last)) end--
    else if (last === ')' && unclosed > 0) {
      end--
      unclosed--
    } else break
  }
  return end
}

/** A link (or image) at `at`: `[text](url)`, or null when the text there is not one. */
function parseLink(text: string, at: number, backticks: BacktickRuns): { html: string; end: number } | null {
  const labelStart = at + (text[at] === '!' ? 2 : 1)
  const labelLimit = Math.min(text.length, labelStart + MAX_LINK_TEXT)
  let depth = 1
  let q = labelStart
  for (; q < labelLimit; q++) {
    const c = text[q]
    if (c === '\\') q++
    else if (c === '`') {
      const run = runLength(text, q, '`')
      const close = backticks.find(q + run, run)
      q = (close < 0 ? q + run : close + run) - 1
    } else if (c === '[') depth++
    else if (c === ']' && --depth === 0) break
  }
  if (q >= labelLimit || text[q + 1] !== '(') return null
  const urlStart = q + 2
  // A URL has no spaces or control characters: it ends before the first one, at its closing parenthesis.
  const blank = text.slice(urlStart, urlStart + MAX_URL).search(/[\s<>\x00-\x1f]/)
  const urlLimit = blank < 0 ? Math.min(text.length, urlStart + MAX_URL) : urlStart + blank
  let parens = 0
  let r = urlStart
  for (; r < urlLimit; r++) {
    const c = text.charCodeAt(r)
    if (c === 0x28) parens++
    else if (c === 0x29 && parens-- === 0) break
  }
  if (r >= urlLimit || r === urlStart) return null
  const url = text.slice(urlStart, r)
  const label = text.slice(labelStart, q)
  const labelHtml = renderInline(label, true)
  let html: string
  if (label.trim() === '') html = escapeHtml(url)
  else if (isLinkable(url)) html = `<a href="${escapeAttribute(url)}">${labelHtml}</a>`
  // Any other URL (javascript:, a relative path) is shown, not linked.
  else html = `${labelHtml} (${escapeHtml(url)})`
  return { html, end: r + 1 }
}

function isLinkable(url: string): boolean {
  if (!/^(https?|tg):/i.test(url)) return false
  try {
    const parsed = new URL(url)
    return parsed.protocol === 'tg:' || parsed.hostname !== ''
  } catch {
    return false
  }
}

type Tag = { kind: 'open' | 'close'; name: string; raw: string }
type HtmlToken = Tag | { kind: 'text'; raw: string; text: string }

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' }

/**
 * Tokens of Telegram HTML as this file writes it: tags, and the text one character (a code point, or an
 * entity) at a time — the places a message may be cut.
 */
function tokenize(html: string): HtmlToken[] {
  const tokens: HtmlToken[] = []
  const markup = /<(\/?)([a-z][a-z0-9-]*)[^>]*>|&(#x[0-9a-f]+|#\d+|[a-z]+);/gi
  let last = 0
  const pushText = (text: string) => {
    for (const char of text) tokens.push({ kind: 'text', raw: char, text: char })
  }
  for (let match = markup.exec(html); match; match = markup.exec(html)) {
    pushText(html.slice(last, match.index))
    last = markup.lastIndex
    if (match[2]) tokens.push({ kind: match[1] ? 'close' : 'open', name: match[2].toLowerCase(), raw: match[0] })
    else tokens.push({ kind: 'text', raw: match[0], text: decodeEntity(match[3]!) ?? match[0] })
  }
  pushText(html.slice(last))
  return tokens
}

function decodeEntity(name: string): string | undefined {
  if (name[0] !== '#') return NAMED_ENTITIES[name.toLowerCase()]
  const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10)
  return code <= 0x10ffff ? String.fromCodePoint(code) : undefined
}

/** The text Telegram shows for this HTML: tags removed, entities decoded. */
export function visibleText(html: string): string {
  let text = ''
  for (const token of tokenize(html)) if (token.kind === 'text') text += token.text
  return text
}

/** This HTML as plain text for a message without parse_mode: a link keeps its URL, after its text. */
export function htmlToPlainText(html: string): string {
  let text = ''
  const hrefs: string[] = []
  for (const token of tokenize(html)) {
    if (token.kind === 'text') text += token.text
    else if (token.name === 'a' && token.kind === 'open') hrefs.push(visibleText(/href="([^"]*)"/.exec(token.raw)?.[1] ?? ''))
    else if (token.name === 'a') {
      const href = hrefs.pop()
      if (href && !text.endsWith(href)) text += ` (${href})`
    }
  }
  return text
}

/** Where a message may be cut, best first: after a blank line, a line break, a space. */
const PARAGRAPH = 3
const LINE = 2
const SPACE = 1

/**
 * Splits Telegram HTML into messages of at most `limit` characters of visible text each. A cut is made after a
 * paragraph, else a line, else a space (in the second half of the message), else anywhere between two
 * characters — never inside a tag, an entity or a surrogate pair. Tags open at the cut are closed at the end of
 * one message and opened again at the start of the next, so every message is balanced; the visible texts of
 * the messages, put together, are the visible text of `html`.
 */
export function splitTelegramHtml(html: string, limit = TELEGRAM_MAX_TEXT): string[] {
  const tokens = tokenize(html)
  const chunks: string[] = []
  let open: Tag[] = []
  let start = 0
  while (start < tokens.length) {
    let visible = 0
    let end = start
    let previous = ''
    /** the latest cut of each kind that keeps at least half the limit in this message */
    const cuts = [-1, -1, -1, -1]
    for (; end < tokens.length; end++) {
      const token = tokens[end]!
      if (token.kind !== 'text') continue
      if (visible + token.text.length > limit && visible > 0) break
      visible += token.text.length
      if (visible >= limit / 2) {
        if (token.text === '\n') cuts[previous === '\n' ? PARAGRAPH : LINE] = end + 1
        else if (token.text === ' ' || token.text === '\t') cuts[SPACE] = end + 1
      }
      previous = token.text
    }
    let cut = end
    if (end < tokens.length) {
      const best = [PARAGRAPH, LINE, SPACE].find((kind) => cuts[kind]! > 0)
      if (best !== undefined) cut = cuts[best]!
      // Closing tags right after the cut end this message; opening tags right before it start the next.
      while (cut < tokens.length && tokens[cut]!.kind === 'close') cut++
      while (cut > start && tokens[cut - 1]!.kind === 'open') cut--
    }
    const stack = [...open]
    let body = ''
    for (let k = start; k < cut; k++) {
      const token = tokens[k]!
      body += token.raw
      if (token.kind === 'open') stack.push(token)
      else if (token.kind === 'close') stack.pop()
    }
    const reopen = open.map((token) => token.raw).join('')
    const close = stack.toReversed().map((token) => `</${token.name}>`).join('')
    chunks.push(reopen + body + close)
    open = stack
    start = cut
  }
  return chunks
}
