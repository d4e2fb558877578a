import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'bun'
import { webFetch, webFetchTool, type WebFetchLimits } from '../src/agent/web-fetch'
import { htmlToMarkdown } from '../src/agent/html-to-markdown'
import { Config } from '../src/config/schema'
import { createLogger } from '../src/logging/logger'
import { checkDestination, nonPublicReason, type Resolve } from '../src/net/ssrf'
import { startFakeLlm, type FakeLlm } from './fakes/llm'
import { homeWithConfig, startGateway, type RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const ARTICLE_HTML = `<!doctype html>
<html><head><title>Otters of the Pacific</title>
<script>window.trackEverything = "TRACKER-SCRIPT-BODY"</script>
<style>.ad { color: red } /* STYLE-NOISE */</style>
</head><body>
<header><nav><a href="/">Home</a> | <a href="/shop">SITE-NAV-SHOP</a> | <a href="/about">About us</a></nav></header>
<aside class="ad sidebar">BUY-NOW-ADVERT: cheap watches, click here!</aside>
<main><article>
<h1>Otters of the Pacific</h1>
<p>Sea otters are the heaviest members of the weasel family, yet among the smallest marine mammals. They live
along the coasts of the northern Pacific Ocean and spend most of their lives in the water.</p>
<p>Unlike most marine mammals, the sea otter has no layer of blubber: it keeps warm with the densest fur of any
animal, up to a million hairs per square inch. Grooming that fur takes hours every day.</p>
<h2>Tools</h2>
<p>Sea otters use rocks to crack open shellfish, one of the few mammals besides primates known to use tools. Read
<a href="/more/otters?page=2">more about otters</a> in the second part of this article.</p>
</article></main>
<footer>FOOTER-COPYRIGHT 2026 Example Corp. All rights reserved.</footer>
<script>console.log("SECOND-SCRIPT")</script>
</body></html>`

// A real 1×1 PNG.
const PNG = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='), (c) => c.charCodeAt(0))

let server: Server<unknown>
let base: string
const seenHosts: string[] = []

beforeAll(() => {
  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 30,
    async fetch(request) {
      const url = new URL(request.url)
      const path = url.pathname
      if (path === '/article') return new Response(ARTICLE_HTML, { headers: { 'content-type': 'text/html; charset=utf-8' } })
      if (path === '/short') {
        return new Response('<html><body><header>SHORT-HEADER</header><nav><a href="/x">SHORT-NAV</a></nav><div role="dialog">COOKIE-BANNER</div><p>Opening hours: 9 to 5.</p><script>SHORT-SCRIPT()</script><footer>SHORT-FOOTER</footer></body></html>', { headers: { 'content-type': 'text/html' } })
      }
      if (path === '/data.json') return new Response('{"name":"otter","tags":["sea","fur"],"weight":{"kg":30}}', { headers: { 'content-type': 'application/json' } })
      if (path === '/image.png') return new Response(PNG, { headers: { 'content-type': 'image/png' } })
      if (path === '/notes.txt') return new Response('plain notes\nline two', { headers: { 'content-type': 'text/plain' } })
      if (path === '/big') {
        // 3 MB of text, streamed in 64 KiB pieces.
        let sent = 0
        const piece = new TextEncoder().encode('x'.repeat(65_535) + '\n')
        return new Response(new ReadableStream({ pull(controller) { if (sent >= 3 * 1024 * 1024) controller.close(); else { controller.enqueue(piece); sent += piece.byteLength } } }), { headers: { 'content-type': 'text/plain' } })
      }
      if (path === '/slow') {
        await Bun.sleep(3000)
        return new Response('too late')
      }
      if (path === '/stall') {
        // Headers at once, then a body that never ends.
        return new Response(new ReadableStream({ start(controller) { controller.enqueue(new TextEncoder().encode('first bytes')) } }), { headers: { 'content-type': 'text/plain' } })
      }
      if (path.startsWith('/r/')) {
        const left = Number(path.slice(3))
        return new Response(null, { status: 302, headers: { location: left > 0 ? `/r/${left - 1}` : '/notes.txt' } })
      }
      if (path === '/to-file') return new Response(null, { status: 301, headers: { location: 'file:///etc/passwd' } })
      if (path === '/to-name') return new Response(null, { status: 302, headers: { location: `http://second.test:${url.port}/host` } })
      if (path === '/host') {
        seenHosts.push(request.headers.get('host') ?? '')
        return new Response(`host=${request.headers.get('host')}`, { headers: { 'content-type': 'text/plain' } })
      }
      return new Response('no such page', { status: 404 })
    },
  })
  base = `http://127.0.0.1:${server.port}`
})
afterAll(() => void server.stop(true))

const logDir = mkdtempSync(join(tmpdir(), 'xopcbot-webfetch-'))
const logFile = join(logDir, 'gateway.log')
const logger = createLogger({ level: 'info', console: false, file: { path: logFile, maxBytes: 1 << 20, maxFiles: 2 } })
const loopbackLimits: WebFetchLimits = { allowPrivate: true, maxBytes: 2 * 1024 * 1024, maxChars: 50_000, timeoutMs: 5000, maxRedirects: 5 }
const fetchIt = (url: string, limits: Partial<WebFetchLimits> = {}, resolve?: Resolve) => webFetch(url, { ...loopbackLimits, ...limits }, { log: logger.log, ...(resolve ? { resolve } : {}) }) as Promise<any>

describe('the address guard', () => {
  test('classifies every non-public address class, and passes public ones', () => {
    const refused: Record<string, RegExp> = {
      '127.0.0.1': /loopback/,
      '127.255.0.9': /loopback/,
      '10.0.0.1': /private/,
      '172.16.0.1': /private/,
      '172.31.255.254': /private/,
      '192.168.1.1': /private/,
      '169.254.169.254': /link-local.*metadata/,
      '169.254.1.1': /link-local/,
      '100.64.0.1': /carrier-grade NAT/,
      '100.127.255.254': /carrier-grade NAT/,
      '0.0.0.0': /unspecified/,
      '224.0.0.251': /multicast/,
      '255.255.255.255': /broadcast/,
      '::1': /loopback/,
      '::': /unspecified/,
      'fe80::1': /link-local/,
      'fe80::1%eth0': /link-local/,
      'fc00::1': /unique local/,
      'fd12:3456::1': /unique local/,
      'ff02::1': /multicast/,
      '::ffff:127.0.0.1': /loopback/,
      '::ffff:7f00:1': /loopback/,
      '::ffff:169.254.169.254': /metadata/,
      '::ffff:10.0.0.1': /private/,
      '64:ff9b::7f00:1': /loopback/,
      '2002:c0a8:101::1': /private/,
    }
    for (const [address, reason] of Object.entries(refused)) expect([address, nonPublicReason(address)]).toEqual([address, expect.stringMatching(reason)])
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '93.184.215.14', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2a00:1450:4001::200e']) {
      expect([address, nonPublicReason(address)]).toEqual([address, null])
    }
  })

  test('IP literals in every spelling are normalised and refused', async () => {
    const literals = ['http://2130706433/', 'http://0x7f.1/', 'http://0x7f000001/', 'http://017700000001/', 'http://0177.0.0.1/', 'http://127.1/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://[0:0:0:0:0:ffff:7f00:1]/', 'http://169.254.169.254/latest/meta-data/', 'http://0.0.0.0:8080/', 'https://10.1.2.3/']
    for (const literal of literals) {
      const result = await checkDestination(new URL(literal), { allowPrivate: false, resolve: async () => { throw new Error(`a literal must not be resolved: ${literal}`) } })
      expect([literal, result.ok]).toEqual([literal, false])
      expect(result.ok ? '' : result.reason).toMatch(/^refused: .* (loopback|private|link-local|unspecified)/)
    }
  })

  test('a name is refused when ANY of its addresses is not public; a public name pins its checked address', async () => {
    const resolver: Resolve = async (host) =>
      host === 'mixed.test' ? [{ address: '93.184.215.14', family: 4 }, { address: '127.0.0.1', family: 4 }]
      : host === 'metadata.test' ? [{ address: '::ffff:169.254.169.254', family: 6 }]
      : host === 'public.test' ? [{ address: '2606:4700::1', family: 6 }, { address: '93.184.215.14', family: 4 }]
      : Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }))
    const mixed = await checkDestination(new URL('https://mixed.test/x'), { allowPrivate: false, resolve: resolver })
    expect(mixed).toEqual({ ok: false, reason: expect.stringContaining('mixed.test resolves to 127.0.0.1, a loopback address') })
    const metadata = await checkDestination(new URL('http://metadata.test/'), { allowPrivate: false, resolve: resolver })
    expect(metadata.ok ? '' : metadata.reason).toContain('metadata')
    expect(await checkDestination(new URL('https://public.test/'), { allowPrivate: false, resolve: resolver })).toEqual({ ok: true, address: '2606:4700::1', family: 6 })
    expect(await checkDestination(new URL('https://nowhere.test/'), { allowPrivate: false, resolve: resolver })).toEqual({ ok: false, reason: 'cannot resolve nowhere.test (ENOTFOUND)' })
    // allowPrivate lets loopback through (what the tests below need).
    expect(await checkDestination(new URL('http://127.0.0.1/'), { allowPrivate: true })).toEqual({ ok: true, address: '127.0.0.1', family: 4 })
  })

  test('with allowPrivate off, webFetch refuses loopback before sending anything (the real system resolver for "localhost")', async () => {
    for (const url of [`${base}/article`, `http://localhost:${server.port}/article`, `http://2130706433:${server.port}/article`]) {
      const result = await fetchIt(url, { allowPrivate: false })
      expect(result.error).toMatch(/^refused: .*loopback address; only public internet addresses are fetched/)
    }
  })
})

describe('webFetch against real servers', () => {
  test('an HTML page: the article as Markdown, without navigation, ads, scripts or footer', async () => {
    const result = await fetchIt(`${base}/article`)
    expect(result).toMatchObject({ status: 200, content_type: 'text/html', title: 'Otters of the Pacific', url: `${base}/article` })
    expect(result.content).toContain('Sea otters are the heaviest members of the weasel family')
    expect(result.content).toMatch(/^#+ Tools$/m)
    // Links are absolute, so the model can follow them.
    expect(result.content).toContain(`[more about otters](${base}/more/otters?page=2)`)
    for (const noise of ['TRACKER-SCRIPT-BODY', 'SECOND-SCRIPT', 'STYLE-NOISE', 'SITE-NAV-SHOP', 'BUY-NOW-ADVERT', 'FOOTER-COPYRIGHT', '<p>', '<article']) {
      expect([noise, result.content.includes(noise)]).toEqual([noise, false])
    }
    expect(result.truncated).toBeUndefined()
  })

  test('a page too short for an article still loses its navigation, banners and scripts', async () => {
    const result = await fetchIt(`${base}/short`)
    expect(result.content).toContain('Opening hours: 9 to 5.')
    for (const noise of ['SHORT-HEADER', 'SHORT-NAV', 'COOKIE-BANNER', 'SHORT-SCRIPT', 'SHORT-FOOTER']) expect([noise, result.content.includes(noise)]).toEqual([noise, false])
  })

  test('JSON is pretty-printed; plain text is returned as it is', async () => {
    const data = await fetchIt(`${base}/data.json`)
    expect(data.content_type).toBe('application/json')
    expect(data.content).toBe(JSON.stringify({ name: 'otter', tags: ['sea', 'fur'], weight: { kg: 30 } }, null, 2))
    expect((await fetchIt(`${base}/notes.txt`)).content).toBe('plain notes\nline two')
  })

  test('an image is described (type, size), not dumped', async () => {
    const result = await fetchIt(`${base}/image.png`)
    expect(result).toMatchObject({ status: 200, content_type: 'image/png', bytes: PNG.byteLength })
    expect(result.note).toContain(`image/png content of ${PNG.byteLength} bytes`)
    expect(result.content).toBeUndefined()
    expect(JSON.stringify(result)).not.toContain('PNG')
  })

  test('a big body is cut at maxBytes while streaming, and the text at maxChars, each with a note', async () => {
    const bytesCut = await fetchIt(`${base}/big`, { maxBytes: 100_000, maxChars: 1_000_000 })
    expect(bytesCut.content.length).toBe(100_000)
    expect(bytesCut.truncated).toContain('only the first 100000 bytes')
    const charsCut = await fetchIt(`${base}/big`, { maxBytes: 200_000, maxChars: 5_000 })
    expect(charsCut.content.length).toBe(5_000)
    expect(charsCut.truncated).toContain('cut to 5000 of its 200000 characters')
  })

  test('a slow server, and a body that never ends, time out with a clear sentence', async () => {
    const started = performance.now()
    const slow = await fetchIt(`${base}/slow`, { timeoutMs: 300 })
    expect(slow.error).toBe(`fetching 127.0.0.1:${server.port} took longer than 300 ms (agent.webFetch.timeoutMs); nothing was returned`)
    const stalled = await fetchIt(`${base}/stall`, { timeoutMs: 300 })
    expect(stalled.error).toContain('took longer than 300 ms')
    expect(performance.now() - started).toBeLessThan(2500)
  })

  test('a name whose DNS answer never comes times out too', async () => {
    const result = await fetchIt('http://hanging-dns.test/', { timeoutMs: 200 }, () => new Promise(() => {}))
    expect(result.error).toBe('fetching hanging-dns.test took longer than 200 ms (agent.webFetch.timeoutMs); nothing was returned')
  })

  test('redirects are followed up to maxRedirects, then refused', async () => {
    const followed = await fetchIt(`${base}/r/3`, { maxRedirects: 4 })
    expect(followed).toMatchObject({ status: 200, url: `${base}/notes.txt`, content: 'plain notes\nline two' })
    const tooMany = await fetchIt(`${base}/r/3`, { maxRedirects: 3 })
    expect(tooMany.error).toBe(`too many redirects: 127.0.0.1:${server.port} still redirected after 3 (agent.webFetch.maxRedirects)`)
  })

  test('every redirect hop is checked again: another scheme is refused, a new name is resolved by the guard and the checked address is used', async () => {
    expect((await fetchIt(`${base}/to-file`)).error).toBe('only http and https URLs are fetched, not file:')
    // second.test exists in no DNS: it is reached only because the guard's resolver answered for it and the
    // request went to that address, with the name in the Host header.
    const asked: string[] = []
    const resolver: Resolve = async (host) => {
      asked.push(host)
      if (host === 'second.test') return [{ address: '127.0.0.1', family: 4 }]
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
    }
    const result = await fetchIt(`${base}/to-name`, {}, resolver)
    expect(result.content).toBe(`host=second.test:${server.port}`)
    expect(asked).toEqual(['second.test'])
    expect(seenHosts.at(-1)).toBe(`second.test:${server.port}`)
  })

  test('bad URLs, credentials and HTTP errors come back as a sentence', async () => {
    expect((await fetchIt('not a url')).error).toContain('is not a valid URL')
    expect((await fetchIt('ftp://127.0.0.1/file')).error).toBe('only http and https URLs are fetched, not ftp:')
    expect((await fetchIt(`http://user:secret@127.0.0.1:${server.port}/article`)).error).toBe('URLs with a user name or password are not fetched')
    expect((await fetchIt(`${base}/missing`)).error).toBe(`127.0.0.1:${server.port} answered HTTP 404 Not Found`)
    const closedPort = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = closedPort.port
    closedPort.stop(true)
    expect((await fetchIt(`http://127.0.0.1:${port}/`)).error).toStartWith(`cannot fetch from 127.0.0.1:${port}: `)
  })

  test('the log names the host and the status only: no path, no query string, no body', async () => {
    await fetchIt(`${base}/notes.txt?token=s3cret-query-token`)
    const lines = await waitFor(() => {
      const text = readFileSync(logFile, 'utf8')
      return text.includes('"status":200') ? text : null
    }, { what: 'the web_fetch log line' })
    expect(lines).toContain(`"host":"127.0.0.1:${server.port}"`)
    expect(lines).not.toContain('s3cret-query-token')
    expect(lines).not.toContain('/notes.txt')
    expect(lines).not.toContain('plain notes')
  })

  test('the tool validates its input and passes the turn\'s abort signal on', async () => {
    const tool = webFetchTool(loopbackLimits, { log: logger.log })
    expect(tool.name).toBe('web_fetch')
    expect(tool.input.safeParse({}).success).toBe(false)
    const controller = new AbortController()
    const pending = tool.run({ url: `${base}/slow` }, controller.signal) as Promise<any>
    controller.abort()
    expect((await pending).error).toBe('the fetch was cancelled')
  })
})

const openssl = Bun.which('openssl')

describe('https: the checked address is used, and the certificate is still verified against the name', () => {
  test.skipIf(!openssl)('a certificate for the name passes; one that does not match the name is refused (needs openssl)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xopcbot-webfetch-tls-'))
    const made = Bun.spawnSync([openssl!, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pinned.test', '-addext', 'subjectAltName=DNS:pinned.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdout: 'ignore', stderr: 'pipe' })
    expect(made.exitCode).toBe(0)
    const tls = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      tls: { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') },
      fetch: (request) => new Response(`host=${request.headers.get('host')}`, { headers: { 'content-type': 'text/plain' } }),
    })
    try {
      // The certificate is trusted through NODE_EXTRA_CA_CERTS, which is read when a process starts: so the
      // fetches run in a child process. Its resolver sends every name to 127.0.0.1, where the server is.
      const script = join(dir, 'fetch.ts')
      await Bun.write(script, `import { webFetch } from ${JSON.stringify(join(import.meta.dir, '../src/agent/web-fetch.ts'))}
const resolve = async () => [{ address: '127.0.0.1', family: 4 }]
const limits = { allowPrivate: true, maxBytes: 100000, maxChars: 10000, timeoutMs: 5000, maxRedirects: 2 }
const results = []
for (const host of ['pinned.test', 'impostor.test', '127.0.0.1']) results.push(await webFetch('https://' + host + ':${tls.port}/page', limits, { log: { info() {} }, resolve }))
console.log(JSON.stringify(results))
`)
      const child = Bun.spawn([process.execPath, script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }, stdout: 'pipe', stderr: 'pipe' })
      const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited])
      const [named, impostor, literal] = JSON.parse(out || err)
      expect(named).toMatchObject({ status: 200, content: `host=pinned.test:${tls.port}` })
      expect(impostor.error).toBe(`the TLS certificate of impostor.test:${tls.port} could not be verified (ERR_TLS_CERT_ALTNAME_INVALID); nothing was read`)
      expect(literal.error).toContain('could not be verified')
    } finally {
      tls.stop(true)
    }
  })
})

describe('the config', () => {
  test('web_fetch is offered by default, with safe defaults; bad values name the key', () => {
    const config = Config.parse({})
    expect(config.agent.tools).toContain('web_fetch')
    expect(config.agent.webFetch).toEqual({ allowPrivate: false, maxBytes: 2 * 1024 * 1024, maxChars: 50_000, timeoutMs: 15_000, maxRedirects: 5 })
    const bad = Config.safeParse({ agent: { webFetch: { maxRedirects: -1, allowPrivate: 'yes', extra: 1 } } })
    expect(bad.success).toBe(false)
    const paths = bad.error!.issues.map((i) => i.path.join('.'))
    expect(paths).toEqual(expect.arrayContaining(['agent.webFetch.maxRedirects', 'agent.webFetch.allowPrivate', 'agent.webFetch']))
  })
})

describe('end to end: the model calls web_fetch through a running gateway', () => {
  let llm: FakeLlm
  let open: RunningGateway
  let closed: RunningGateway
  const configFor = (allowPrivate: boolean) => ({
    agent: { model: 'fake/m', maxRetries: 0, webFetch: { allowPrivate, timeoutMs: 5000 } },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1` } },
  })
  beforeAll(async () => {
    llm = startFakeLlm()
    ;[open, closed] = await Promise.all([startGateway({ home: homeWithConfig(configFor(true)) }), startGateway({ home: homeWithConfig(configFor(false)) })])
  })
  afterAll(async () => {
    await Promise.all([open?.stop(), closed?.stop()])
    llm?.stop()
  })

  /** What the model was sent as the result of its web_fetch call, in the call after it. */
  const toolResultSeen = (call: { body: any }) => {
    const message = call.body.messages.findLast((m: any) => m.role === 'tool')
    return JSON.parse(message.content)
  }

  test('the article reaches the model as Markdown, without the page noise; the turn answers', async () => {
    llm.queue.push({ toolCalls: [{ name: 'web_fetch', input: { url: `${base}/article?session=tok-e2e-123` } }] }, { text: 'Otters use tools.' })
    const before = llm.calls.length
    const response = await postJson(`${open.url}/api/agent`, { message: 'summarise that page', session: 'wf-open' })
    expect(response.status).toBe(200)
    expect((await json(response)).reply).toBe('Otters use tools.')
    const seen = toolResultSeen(llm.calls[before + 1]!)
    expect(seen.content).toContain('Sea otters use rocks to crack open shellfish')
    expect(seen.content).not.toContain('TRACKER-SCRIPT-BODY')
    expect(seen.content).not.toContain('SITE-NAV-SHOP')
    // The gateway's log has the fetch with host and status, and not the query string's token.
    const line = await waitFor(() => open.output().split('\n').find((l) => l.includes('web_fetch') && l.includes('200')), { what: 'the web_fetch log line' })
    expect(line).toContain(`127.0.0.1:${server.port}`)
    expect(open.output()).not.toContain('tok-e2e-123')
  })

  test('with allowPrivate off a loopback URL is refused, the model sees why, and the turn still succeeds', async () => {
    llm.queue.push({ toolCalls: [{ name: 'web_fetch', input: { url: `http://127.0.0.1:${server.port}/article` } }] }, { text: 'I may not open that address.' })
    const before = llm.calls.length
    const hostsBefore = seenHosts.length
    const response = await postJson(`${closed.url}/api/agent`, { message: 'open my router page', session: 'wf-closed' })
    expect(response.status).toBe(200)
    expect((await json(response)).reply).toBe('I may not open that address.')
    const seen = toolResultSeen(llm.calls[before + 1]!)
    expect(seen.error).toBe('refused: 127.0.0.1 is a loopback address; only public internet addresses are fetched (agent.webFetch.allowPrivate is off)')
    expect(seenHosts.length).toBe(hostsBefore)
  })
})

describe('pages that would take the converter too long', () => {
  // Readability's time grows steeply with nesting (seconds for a few KiB) on the gateway's only thread: such a
  // page is given as plain text. The test's own timeout is the bound: the old path took minutes on this page.
  test('4,000 nested elements: the page text, not a frozen gateway', () => {
    const html = `<html><head><title>Deep</title></head><body><script>var x = 1</script>${'<div>'.repeat(4000)}the deep text${'</div>'.repeat(4000)}</body></html>`
    expect(htmlToMarkdown(html, 'http://example.test/')).toEqual({ title: 'Deep', markdown: 'the deep text' })
  }, 20_000)
})
