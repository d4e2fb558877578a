import { afterEach, describe, expect, test } from 'bun:test'
import { createConsola } from 'consola/core'
import fc from 'fast-check'
import { TelegramSender } from '../src/channels/telegram'
import { htmlToPlainText, markdownToTelegramHtml, splitTelegramHtml, TELEGRAM_MAX_TEXT } from '../src/channels/telegram/format'
import { TelegramChannel as TelegramConfig } from '../src/config/schema'
import { parseTelegramHtml, startFakeTelegram, type FakeTelegram } from './fakes/telegram'

/** Telegram's reading of the HTML (the fake's strict parser, not ours); fails the test when it would refuse it. */
function telegramReads(html: string) {
  const parsed = parseTelegramHtml(html)
  if (!parsed.ok) throw new Error(`Telegram would refuse ${JSON.stringify(html)}: ${parsed.error}`)
  return parsed
}

const alphanumerics = (text: string) => (text.match(/[\p{L}\p{N}]/gu) ?? []).join('')
function isSubsequence(part: string, whole: string): boolean {
  const wanted = [...part]
  let at = 0
  for (const char of whole) if (at < wanted.length && wanted[at] === char) at++
  return at === wanted.length
}

/** What the chat shows, links with their URL after their text: no letter or digit of the reply may get lost. */
function shownWithUrls(html: string): string {
  const { text, entities } = telegramReads(html)
  let shown = ''
  let at = 0
  for (const link of entities.filter((e) => e.type === 'text_link').sort((a, b) => a.offset + a.length - (b.offset + b.length))) {
    shown += text.slice(at, link.offset + link.length) + link.url
    at = link.offset + link.length
  }
  return shown + text.slice(at)
}

const markdownish = fc
  .array(
    fc.oneof(
      fc.constantFrom('*', '**', '***', '_', '__', '~~', '~', '`', '``', '```', '```js', '~~~', '\n', '\n\n', ' ', '  ', '\t', '# ', '## ', '> ', '>', '- ', '* ', '1. '),
      fc.constantFrom('[', ']', '(', ')', '](', '![', 'https://x.y/a_b', 'http://', 'javascript:alert(1)', 'tg://user?id=1', '<', '>', '&', '&amp;', '&#', '"', "'", '\\', '|', '!', '#'),
      fc.constantFrom('a', 'word', 'Wörd', 'é', '😀', '日本', '1', '\r\n', '\u200b'),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''))
const anyText = fc.oneof(markdownish, fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme-ascii', maxLength: 80 }))

describe('Markdown → Telegram HTML', () => {
  test.each([
    ['**bold** and __bold__', '<b>bold</b> and <b>bold</b>'],
    ['*italic* and _italic_', '<i>italic</i> and <i>italic</i>'],
    ['***both***', '<i><b>both</b></i>'],
    ['**bold with *italic* inside**', '<b>bold with <i>italic</i> inside</b>'],
    ['~~gone~~, but ~5 minutes and ~~~ stay', '<s>gone</s>, but ~5 minutes and ~~~ stay'],
    ['run `npm test` now', 'run <code>npm test</code> now'],
    ['`` a ` b ``', '<code>a ` b</code>'],
    ['`<b>` & `a && b`', '<code>&lt;b&gt;</code> &amp; <code>a &amp;&amp; b</code>'],
    ['```python\nif a < b:\n    print("**x**")\n```', '<pre><code class="language-python">if a &lt; b:\n    print("**x**")</code></pre>'],
    ['```\nplain code\n```', '<pre>plain code</pre>'],
    ['~~~\ntilde fence\n~~~', '<pre>tilde fence</pre>'],
    ['text\n```js\nunclosed fence', 'text\n<pre><code class="language-js">unclosed fence</code></pre>'],
    ['1. first\n   ```sh\n   ls -l\n   ```', '1. first\n<pre><code class="language-sh">ls -l</code></pre>'],
    ['[the docs](https://example.com/a?b=1&c=2)', '<a href="https://example.com/a?b=1&amp;c=2">the docs</a>'],
    ['[**bold** link](http://x.y/)', '<a href="http://x.y/"><b>bold</b> link</a>'],
    ['[`code` in a link](https://x.y)', '<a href="https://x.y">code in a link</a>'],
    ['[a user](tg://user?id=123)', '<a href="tg://user?id=123">a user</a>'],
    ['![a picture](https://x.y/p.png)', '<a href="https://x.y/p.png">a picture</a>'],
    ['[](https://x.y)', 'https://x.y'],
    ['[relative](/docs/a.md)', 'relative (/docs/a.md)'],
    ['[mail](mailto:a@b.c)', 'mail (mailto:a@b.c)'],
    ['# Title', '<b>Title</b>'],
    ['### Sub *title* ###', '<b>Sub <i>title</i></b>'],
    ['#hashtag stays', '#hashtag stays'],
    ['## C# tips', '<b>C# tips</b>'],
    ['# #', '# #'],
    ['(see https://x.y/a_(b)).', '(see https://x.y/a_(b)).'],
    ['**https://x.y/a_(b)** and *https://x.y/c*.', '<b>https://x.y/a_(b)</b> and <i>https://x.y/c</i>.'],
    ['- one\n- **two**\n* three\n+ four', '- one\n- <b>two</b>\n* three\n+ four'],
    ['1. first\n2) second', '1. first\n2) second'],
    ['> quoted **text**\n> second line\n\nafter', '<blockquote>quoted <b>text</b>\nsecond line</blockquote>\n\nafter'],
    ['> outer\n> > inner', '<blockquote>outer\ninner</blockquote>'],
    ['> ```js\n> code()\n> ```', '<blockquote><code>code()</code></blockquote>'],
    ['a paragraph\n\n\nanother', 'a paragraph\n\n\nanother'],
    ['---\n***\n___', '---\n***\n___'],
    ['| a | b |\n|---|---|', '| a | b |\n|---|---|'],
  ])('%j', (markdown, html) => {
    expect(markdownToTelegramHtml(markdown)).toBe(html)
    telegramReads(html)
  })

  test.each([
    ['2*3*4 = 24', '2*3*4 = 24'],
    ['snake_case_name and __init__.py', 'snake_case_name and <b>init</b>.py'],
    ['*.ts and *.js files', '*.ts and *.js files'],
    ['a * b * c', 'a * b * c'],
    ['see https://example.com/some_path_with_*stars*_ ok', 'see https://example.com/some_path_with_*stars*_ ok'],
    ['unclosed **bold and `code', 'unclosed **bold and `code'],
    ['\\*not italic\\* and \\`not code\\`', '*not italic* and `not code`'],
    ['**a\nb**', '**a\nb**'],
  ])('what is not formatting stays as written: %j', (markdown, html) => {
    expect(markdownToTelegramHtml(markdown)).toBe(html)
  })

  test.each([
    ['<b>not a tag</b> <script>alert(1)</script>', '&lt;b&gt;not a tag&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;'],
    ['Tom & Jerry &amp; &lt; &#60;', 'Tom &amp; Jerry &amp;amp; &amp;lt; &amp;#60;'],
    ['[click](javascript:alert(1))', 'click (javascript:alert(1))'],
    ['[click](JavaScript:alert(document.cookie))', 'click (JavaScript:alert(document.cookie))'],
    ['[x](data:text/html,<script>)', '[x](data:text/html,&lt;script&gt;)'],
    ['[x](https://a.b/"onmouseover="alert(1))', '<a href="https://a.b/&quot;onmouseover=&quot;alert(1)">x</a>'],
    ['[x](http://)', 'x (http://)'],
    ['**</b>**', '<b>&lt;/b&gt;</b>'],
    ['```"><script>\nx', '```"&gt;&lt;script&gt;\nx'],
    ['</pre></code></a>', '&lt;/pre&gt;&lt;/code&gt;&lt;/a&gt;'],
  ])('hostile: %j', (markdown, html) => {
    expect(markdownToTelegramHtml(markdown)).toBe(html)
    telegramReads(html)
  })

  test('pathological input converts in linear time', () => {
    const inputs = ['*a_'.repeat(40_000), '['.repeat(100_000), '[a]('.repeat(30_000), '` `` ```'.repeat(12_000), '**x '.repeat(30_000), '>'.repeat(100_000), 'h'.repeat(100_000),
      `# a${' '.repeat(100_000)}#x`, `# ${' #'.repeat(50_000)}`, ` https://x.y/${')'.repeat(2000)}`.repeat(50)]
    for (const input of inputs) {
      const started = performance.now()
      const html = markdownToTelegramHtml(input)
      expect(performance.now() - started).toBeLessThan(1500)
      telegramReads(html)
    }
  })

  test('emphasis nested without end stays shallow: a long reply is not split into messages that reopen thousands of tags', () => {
    const nested = `${'*a _b '.repeat(50_000)}x${' c_ d*'.repeat(50_000)}`
    const started = performance.now()
    const html = markdownToTelegramHtml(nested)
    const chunks = splitTelegramHtml(html)
    expect(performance.now() - started).toBeLessThan(1500)
    for (const chunk of chunks) expect(chunk.length).toBeLessThan(3 * TELEGRAM_MAX_TEXT)
    // The innermost pairs are formatting; the rest of the markers stay as text, and nothing is lost.
    const shown = chunks.map((chunk) => telegramReads(chunk).text).join('')
    expect(shown).toBe(telegramReads(html).text)
    expect(shown.replace(/[*_]/g, '')).toBe(nested.replace(/[*_]/g, ''))
    expect(telegramReads(html).entities.length).toBeGreaterThan(0)
  })

  test('any text converts to HTML that Telegram accepts, losing no letter or digit', () => {
    fc.assert(
      fc.property(anyText, (markdown) => {
        const html = markdownToTelegramHtml(markdown)
        const shown = alphanumerics(shownWithUrls(html))
        // The language of a code fence goes into the pre entity (or nowhere, inside a quote): it may be missing.
        const withoutFenceLanguages = markdown.replace(/^([ \t>]*(?:`{3,}|~{3,}))[\w+#.-]{1,32}[ \t]*$/gm, '$1')
        expect(isSubsequence(alphanumerics(withoutFenceLanguages), shown)).toBe(true)
        expect(isSubsequence(shown, alphanumerics(markdown))).toBe(true)
        for (const link of telegramReads(html).entities) if (link.url) expect(link.url).toMatch(/^(https?|tg):/i)
      }),
      { numRuns: 3000 },
    )
  })
})

describe('splitting at Telegram\'s limit', () => {
  const chunksOf = (html: string, limit?: number) => splitTelegramHtml(html, limit).map((chunk) => ({ html: chunk, text: telegramReads(chunk).text }))

  test('a short message is one chunk, unchanged', () => {
    expect(splitTelegramHtml('<b>hi</b> there')).toEqual(['<b>hi</b> there'])
  })

  test('cuts after a paragraph, then a line, then a space', () => {
    const paragraph = `${'a'.repeat(60)}\n\n${'b'.repeat(30)}\n${'c'.repeat(5)} ${'d'.repeat(20)}`
    expect(chunksOf(paragraph, 100).map((c) => c.text)).toEqual([`${'a'.repeat(60)}\n\n`, `${'b'.repeat(30)}\n${'c'.repeat(5)} ${'d'.repeat(20)}`])
    const lines = `${'a'.repeat(60)}\n${'b'.repeat(20)} ${'c'.repeat(30)}`
    expect(chunksOf(lines, 100).map((c) => c.text)).toEqual([`${'a'.repeat(60)}\n`, `${'b'.repeat(20)} ${'c'.repeat(30)}`])
    const words = `${'a'.repeat(60)} ${'b'.repeat(60)}`
    expect(chunksOf(words, 100).map((c) => c.text)).toEqual([`${'a'.repeat(60)} `, 'b'.repeat(60)])
    // A break in the first half would waste most of a message: a cut anywhere is better.
    const early = `${'a'.repeat(10)}\n${'b'.repeat(150)}`
    expect(chunksOf(early, 100).map((c) => c.text.length)).toEqual([100, 61])
  })

  test('tags open at a cut are closed and opened again; entities and surrogate pairs stay whole', () => {
    const html = markdownToTelegramHtml(`**${'bold words '.repeat(20).trim()}** and [a link with ${'many words '.repeat(10).trim()}](https://x.y/?a=1&b=2)`)
    const chunks = chunksOf(html, 100)
    expect(chunks.length).toBeGreaterThan(2)
    expect(chunks[0]!.html).toStartWith('<b>')
    expect(chunks[0]!.html).toEndWith('</b>')
    expect(chunks[1]!.html).toStartWith('<b>')
    const linked = chunks.filter((c) => c.html.includes('<a href="https://x.y/?a=1&amp;b=2">'))
    expect(linked.length).toBe(2)
    expect(chunks.map((c) => c.text).join('')).toBe(telegramReads(html).text)

    const escaped = chunksOf(escapeAll('&<>'.repeat(50)), 10)
    expect(escaped.every((c) => c.text.length === 10 || c === escaped.at(-1))).toBe(true)
    const emoji = chunksOf('😀'.repeat(30), 7)
    expect(emoji.every((c) => c.text.isWellFormed() && c.text.length <= 7)).toBe(true)
    expect(emoji.map((c) => c.text).join('')).toBe('😀'.repeat(30))
  })

  test('a code block is split into code blocks with the same language', () => {
    const code = Array.from({ length: 400 }, (_, i) => `line ${i} of the program`).join('\n')
    const chunks = chunksOf(markdownToTelegramHtml(`Here:\n\`\`\`ts\n${code}\n\`\`\``))
    expect(chunks.length).toBe(3)
    for (const chunk of chunks.slice(1)) expect(chunk.html).toStartWith('<pre><code class="language-ts">')
    expect(chunks.every((c) => c.text.length <= TELEGRAM_MAX_TEXT)).toBe(true)
  })

  test('any reply: every chunk is balanced HTML within the limit, and together they show the whole text', () => {
    fc.assert(
      fc.property(anyText, fc.integer({ min: 2, max: 120 }), (markdown, limit) => {
        const html = markdownToTelegramHtml(markdown)
        const chunks = chunksOf(html, limit)
        for (const chunk of chunks) {
          expect(chunk.text.length).toBeLessThanOrEqual(limit)
          if (markdown.isWellFormed()) expect(chunk.text.isWellFormed()).toBe(true)
        }
        expect(chunks.map((c) => c.text).join('')).toBe(telegramReads(html).text)
      }),
      { numRuns: 3000 },
    )
  })

  test('a long reply at the real limit', () => {
    const reply = Array.from({ length: 40 }, (_, i) => `## Part ${i}\n\n${'Some **bold** and *italic* text with `code` & <tags>. '.repeat(8)}`).join('\n\n')
    const html = markdownToTelegramHtml(reply)
    const chunks = chunksOf(html)
    expect(chunks.length).toBeGreaterThan(3)
    for (const chunk of chunks) {
      expect(chunk.text.length).toBeLessThanOrEqual(TELEGRAM_MAX_TEXT)
      // Cut at paragraphs: every chunk but the last ends with a blank line.
      if (chunk !== chunks.at(-1)) expect(chunk.text).toEndWith('\n\n')
    }
    expect(chunks.map((c) => c.text).join('')).toBe(telegramReads(html).text)
  })
})

describe('plain text for a message Telegram refused', () => {
  test('tags go, entities are decoded, links keep their URL', () => {
    expect(htmlToPlainText('<b>bold</b> &lt;x&gt; &amp; <a href="https://a.b/?q=1&amp;r=2">docs</a> <a href="https://c.d">https://c.d</a>')).toBe(
      'bold <x> & docs (https://a.b/?q=1&r=2) https://c.d',
    )
  })
})

function escapeAll(text: string) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

describe('TelegramSender against the fake Bot API', () => {
  const fakes: FakeTelegram[] = []
  afterEach(() => {
    for (const fake of fakes.splice(0)) fake.stop()
  })

  function sender() {
    const fake = startFakeTelegram()
    fakes.push(fake)
    const warnings: unknown[][] = []
    const log = createConsola({ level: 5, reporters: [{ log: (entry) => void (entry.type === 'warn' && warnings.push(entry.args)) }] })
    const config = TelegramConfig.parse({ type: 'telegram', enabled: true, token: fake.token, apiRoot: fake.url })
    return { fake, warnings, telegram: new TelegramSender('telegram', config, { log }) }
  }
  const words = 'word '.repeat(700).trim()

  test('only the message Telegram cannot parse goes as plain text; the others keep their formatting', async () => {
    const { fake, warnings, telegram } = sender()
    // A Bot API server that does not know <blockquote>: the second of three messages holds the quote.
    fake.unsupportedTags.add('blockquote')
    const id = await telegram.send('42', `**One** ${words}\n\n> **Two** [quoted](https://x.y/q) ${words}\n\n**Three** ${words}`)
    expect(fake.sent.map((m) => m.parse_mode)).toEqual(['HTML', undefined, 'HTML'])
    expect(fake.sent[1]!.text).toBe(`Two quoted (https://x.y/q) ${words}\n\n`)
    expect(fake.sent[2]!.text).toStartWith('<b>Three</b>')
    expect(id).toBe(String(fake.sent[2]!.message_id))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]![0]).toBe('Telegram could not parse a formatted message; sending it as plain text')
    expect(warnings[0]![1]).toMatchObject({ channel: 'telegram', chatId: '42' })
    expect(JSON.stringify(warnings)).not.toContain('word')
  })

  test('formatting Telegram finds too long (ENTITIES_TOO_LONG) goes as plain text too', async () => {
    const { fake, telegram } = sender()
    fake.failures.set('sendMessage', [{ error_code: 400, description: 'Bad Request: ENTITIES_TOO_LONG' }])
    await telegram.send('42', 'see [a](https://x.y/a) and [b](https://x.y/b)')
    expect(fake.sent.map((m) => [m.parse_mode, m.text])).toEqual([[undefined, 'see a (https://x.y/a) and b (https://x.y/b)']])
  })

  test('plain text longer than a message after its links got their URLs: no blank part is sent', async () => {
    const { fake, telegram } = sender()
    fake.failures.set('sendMessage', [{ error_code: 400, description: "Bad Request: can't parse entities: test" }])
    // The link's URL, written after its text, takes the plain text past the limit; what is cut off is blank lines.
    const url = `https://x.y/${'p'.repeat(1000)}`
    await telegram.send('42', `${'x'.repeat(3000)} [a](${url})${'\n'.repeat(100)}`)
    expect(fake.sent.map((m) => [m.parse_mode, m.text.trim()])).toEqual([[undefined, `${'x'.repeat(3000)} a (${url})`]])
  })

  test('any other refusal is not retried as plain text', async () => {
    const { fake, warnings, telegram } = sender()
    fake.failures.set('sendMessage', [{ error_code: 400, description: 'Bad Request: chat not found' }])
    await expect(telegram.send('42', '**hi**')).rejects.toThrow('Telegram refused the message (400: Bad Request: chat not found)')
    expect(fake.calls.filter((c) => c.method === 'sendMessage')).toHaveLength(1)
    expect(fake.sent).toHaveLength(0)
    expect(warnings).toHaveLength(0)
  })

  test('a blank text goes as it is, and Telegram says why it refuses it', async () => {
    const { fake, telegram } = sender()
    await expect(telegram.send('42', ' \n ')).rejects.toThrow('message text is empty')
    expect(fake.calls.filter((c) => c.method === 'sendMessage').map((c) => [c.body.text, c.body.parse_mode])).toEqual([[' \n ', undefined]])
  })
})
