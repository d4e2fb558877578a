import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Page } from 'puppeteer-core'
import { readSse, type SseEvent } from '../src/ui/api'
import { findChromium, launchBrowser, screenshot, type BrowserSession, type WatchedPage } from './helpers/browser'
import { makeWorld, type World } from './helpers/channels'
import { configPathOf, homeWithConfig, ROOT, startGateway, writeConfig, type RunningGateway } from './helpers/gateway'
import { waitFor } from './helpers/wait'

// The Control UI (SPEC §14) in a real headless Chromium against a real gateway process, the fake LLM, the fake
// Telegram Bot API and a webhook receiver. `UI_SCREENSHOTS=docs bun test tests/ui.test.ts` also writes the
// README's screenshots (docs/ui-chat.png, docs/ui-status.png).

// The functions handed to page.evaluate/waitForFunction run in the browser: these are its globals (the test
// project itself is typed without the DOM library).
declare const window: any
declare const document: any
declare const location: any
declare const sessionStorage: any
declare const localStorage: any
declare const getComputedStyle: (element: unknown) => any

const TOKEN = 'ui-test-token-0123456789abcdef'
const PROBE = '<img src=x onerror="window.__xss=1">'
const chromium = findChromium()
const missing = 'missing' in chromium ? chromium.missing : null
const docsDir = process.env.UI_SCREENSHOTS ? resolve(ROOT, process.env.UI_SCREENSHOTS) : null
if (missing) console.warn(`tests/ui.test.ts: SKIPPED, no browser: ${missing}`)

let w: World
let gateway: RunningGateway
let session: BrowserSession
let tab: WatchedPage
let page: Page

const api = async (path: string, init: RequestInit = {}) => {
  const response = await fetch(`${gateway.url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } })
  return { status: response.status, body: (await response.json()) as any }
}

/** Waits until some element matching `selector` has `text` in its text (polled in the page, every frame). */
const waitForText = (selector: string, text: string, timeout = 10_000) =>
  page.waitForFunction((s: string, t: string) => [...document.querySelectorAll(s)].some((el) => (el.textContent ?? '').includes(t)), { timeout }, selector, text)

const go = async (hash: string) => {
  await page.evaluate((h: string) => {
    location.hash = h
  }, hash)
  await page.waitForFunction((h: string) => location.hash === h, {}, hash)
}

/**
 * Presses the button inside `scope` whose text is exactly `label` the way a keyboard user does: focus, then
 * Enter. (Every action is reachable by keyboard this way; a pointer click, by contrast, is hit-tested against the
 * last painted frame and can land on what was there a moment before.)
 */
async function clickButton(label: string, scope = 'body') {
  const handle = await page.waitForFunction(
    (s: string, l: string) => [...(document.querySelector(s)?.querySelectorAll('button') ?? [])].find((b) => b.textContent?.trim() === l && !b.disabled) ?? null,
    { timeout: 10_000 },
    scope,
    label,
  )
  await (handle as any).focus()
  await page.keyboard.press('Enter')
}

async function fill(selector: string, value: string) {
  await page.evaluate((s: string) => {
    document.querySelector(s).value = ''
  }, selector)
  await page.type(selector, value)
}

/** Each test leaves a screenshot (also when it fails); they are listed at the end. */
function uiTest(name: string, body: () => Promise<void>, timeout = 20_000) {
  test(
    name,
    async () => {
      try {
        await body()
      } finally {
        if (page && session) await screenshot(page, session.shots, name).catch(() => {})
      }
    },
    timeout,
  )
}

// The UI's pure parts, without a browser.
describe('Control UI parts', () => {
  test('readSse: events split anywhere across chunks (even inside a character), CRLF, comments, multi-line data', async () => {
    const text = ': ready\r\n\r\nevent: delta\r\ndata: {"text":"é🙂"}\r\n\r\nevent: log\ndata: line 1\ndata: line 2\n\n: ping\n\ndata: plain\n\n'
    const bytes = new TextEncoder().encode(text)
    for (const size of [1, 2, 7, bytes.length]) {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size))
          controller.close()
        },
      })
      const events: SseEvent[] = []
      await readSse(new Response(body), (event) => events.push(event))
      expect(events).toEqual([
        { event: 'delta', data: '{"text":"é🙂"}' },
        { event: 'log', data: 'line 1\nline 2' },
        { event: 'message', data: 'plain' },
      ])
    }
  })
})

describe.skipIf(missing !== null)(`Control UI in headless Chromium${missing ? ` (skipped: ${missing})` : ''}`, () => {
  beforeAll(async () => {
    // Telegram DMs stay closed (pairing), so a stranger's message makes a pairing request to approve.
    w = await makeWorld({ openDms: false })
    writeConfig(w.home, { ...w.config, gateway: { ...w.config.gateway, auth: { token: TOKEN } } })
    const [started, browser] = await Promise.all([w.start(), launchBrowser((chromium as { path: string }).path)])
    gateway = started
    session = browser
    tab = await session.newPage()
    page = tab.page
    // Shorter than a test's timeout, so a wait that fails still leaves its screenshot.
    page.setDefaultTimeout(10_000)
    // Every CSP violation the page sees, recorded before any of its own script runs.
    await page.evaluateOnNewDocument(() => {
      window.__csp = []
      document.addEventListener('securitypolicyviolation', (event: any) => window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`))
    })
  }, 30_000)

  afterAll(async () => {
    await session?.close()
    if (gateway && gateway.proc.exitCode === null) await gateway.stop()
    w?.stop()
    if (session) console.log(`Control UI screenshots: ${session.shots}`)
  })

  uiTest('GET / serves the page with a strict CSP, no framing and no inline script', async () => {
    const response = await fetch(`${gateway.url}/`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('text/html')
    const csp = response.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect(response.headers.get('referrer-policy')).toBe('no-referrer')
    const html = await response.text()
    // Every script comes from a file of the bundle; none is written into the page.
    expect(html).toMatch(/<script[^>]+src="\/ui\/[^"]+\.js"/)
    expect(html.match(/<script(?![^>]*\bsrc=)[^>]*>/g)).toBeNull()
    // The whole UI (page, script, styles) stays small: under 300 KB before compression.
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1]!)
    expect(assets.length).toBeGreaterThanOrEqual(2)
    let size = html.length
    for (const path of assets) {
      const asset = await fetch(`${gateway.url}${path}`)
      expect(asset.status).toBe(200)
      expect(asset.headers.get('content-security-policy')).toBe(csp)
      size += (await asset.arrayBuffer()).byteLength
    }
    expect(size).toBeLessThan(300_000)
    console.log(`Control UI bundle: ${(size / 1024).toFixed(1)} KB (HTML + JS + CSS, minified)`)
    // The page is public, its data is not.
    expect((await fetch(`${gateway.url}/api/status`)).status).toBe(401)
  })

  uiTest('login: a wrong token is refused, the right one is kept in sessionStorage only', async () => {
    await page.goto(`${gateway.url}/`)
    await page.waitForSelector('#token')
    await page.type('#token', 'not-the-token')
    await page.click('form button[type=submit]')
    await waitForText('[role=alert]', 'not accepted')
    await fill('#token', TOKEN)
    await page.click('form button[type=submit]')
    await page.waitForSelector('nav[aria-label=Pages]')
    const storage = await page.evaluate(() => ({ session: sessionStorage.getItem('xopcbot.token'), local: JSON.stringify({ ...localStorage }), cookie: document.cookie, url: location.href }))
    expect(storage.session).toBe(TOKEN)
    expect(storage.local).not.toContain(TOKEN)
    expect(storage.cookie).toBe('')
    expect(storage.url).not.toContain(TOKEN)
  })

  uiTest('chat: the reply streams in piece by piece, and the session appears', async () => {
    const reply = 'Streaming hello from the fake model, word by word.'
    w.llm.queue.push({ text: reply, chunkDelayMs: 120 })
    await go('#/chat/ui-e2e')
    await page.waitForSelector('#chat-input')
    const composerTop = () => page.evaluate(() => document.querySelector('#chat-input').getBoundingClientRect().top)
    const before = await composerTop()
    await page.type('#chat-input', 'Hi there')
    await page.keyboard.press('Enter')
    // Part of the reply is on the page while the rest is still coming: it is streamed, not shown at the end.
    await page.waitForFunction(
      (full: string) => {
        const text = document.querySelector('[data-testid=pending-reply] .bubble')?.textContent ?? ''
        return text.startsWith('Streaming') && text.length < full.length
      },
      { timeout: 10_000 },
      reply,
    )
    expect(await page.$('.msg-assistant.streaming')).not.toBeNull()
    // The growing reply scrolls inside the conversation: the composer does not move.
    expect(await composerTop()).toBe(before)
    await waitForText('.chat-scroll .msg-assistant .bubble', reply)
    await page.waitForSelector('.msg-assistant.streaming', { hidden: true })
    expect(await composerTop()).toBe(before)
    expect(w.llm.calls.at(-1)).toMatchObject({ stream: true, lastUser: 'Hi there' })
    // The session exists now, in the picker and through the API.
    await waitForText('#session-pick option', 'ui-e2e (2)')
    const stored = await api('/api/sessions/ui-e2e')
    expect(stored.body.session.messages.map((m: any) => [m.role, m.content])).toEqual([
      ['user', 'Hi there'],
      ['assistant', reply],
    ])
  })

  uiTest('chat: a tool call in the history is shown as a tool call', async () => {
    w.llm.queue.push({ toolCalls: [{ name: 'time', input: {} }] }, { text: 'It is time.' })
    await page.type('#chat-input', 'What time is it?')
    await page.keyboard.press('Enter')
    await waitForText('.chat-scroll .msg-assistant .bubble', 'It is time.')
    await waitForText('.chat-scroll details.tool summary', 'time')
    expect(await page.evaluate(() => document.querySelectorAll('.chat-scroll details.tool').length)).toBe(2)
    if (docsDir) {
      await page.click('.chat-scroll details.tool summary')
      mkdirSync(docsDir, { recursive: true })
      await screenshot(page, docsDir, 'ui-chat')
    }
  })

  uiTest('chat: a failed turn says why; Stop ends a streaming one', async () => {
    w.llm.queue.push({ status: 500, body: 'model on fire' })
    await page.type('#chat-input', 'Will this fail?')
    await page.keyboard.press('Enter')
    await waitForText('[data-testid=pending-reply] [role=alert]', 'answered HTTP 500')

    // The fake model thinks for a while; Stop while it does reaches it: the gateway drops its request.
    w.llm.queue.push({ text: 'too late', delayMs: 1500 })
    const calls = w.llm.calls.length
    await page.type('#chat-input', 'Think slowly')
    await page.keyboard.press('Enter')
    await waitFor(() => w.llm.calls.length > calls, { what: 'the model asked' })
    await clickButton('Stop', '.composer')
    await waitForText('[data-testid=pending-reply] [role=alert]', 'Stopped.')
    const call = w.llm.calls[calls]!
    await waitFor(() => call.aborted !== undefined, { what: 'the fake model to notice' })
    expect(call.aborted).toBe(true)
    await page.waitForSelector('.composer button[type=submit]')
  })

  uiTest('sessions: listed, filtered, deleted after a confirmation', async () => {
    for (const key of ['ui-other', 'ui-keep']) await api('/api/agent', { method: 'POST', body: JSON.stringify({ message: 'hello', session: key }) })
    await go('#/sessions')
    await waitForText('.cards .key', 'ui-other')
    await waitForText('.cards .key', 'ui-keep')
    await page.type('#session-filter', 'other')
    await page.waitForFunction(() => [...document.querySelectorAll('.cards .key')].map((el) => el.textContent).join() === 'ui-other', {})
    await clickButton('Delete', '.cards')
    await clickButton('Delete ui-other', '.cards')
    await waitForText('[role=status]', 'Deleted session ui-other')
    expect((await api('/api/sessions/ui-other')).status).toBe(404)
    expect((await api('/api/sessions/ui-keep')).status).toBe(200)
  })

  uiTest('cron: create with a readable schedule, disable, run now, see the run, delete', async () => {
    await go('#/cron')
    await page.waitForSelector('form input[name=schedule]')
    await fill('input[name=name]', 'ui-weekly')
    await fill('input[name=schedule]', '0 9 * * 1')
    await fill('input[name=timezone]', 'Europe/Berlin')
    await waitForText('#schedule-preview', 'At 09:00, only on Monday (Europe/Berlin)')
    // The gateway's own check follows: the next runs, or why it would refuse the schedule.
    await waitForText('#schedule-preview', 'Next (your time): ')
    await fill('input[name=schedule]', 'not a schedule')
    await waitForText('#schedule-preview', 'Not a schedule')
    await waitForText('#schedule-preview .error', 'query.schedule: must be a cron expression')
    await fill('input[name=schedule]', '0 9 * * 1')
    await page.type('textarea[name=message]', 'Weekly hello')
    await clickButton('Create job', 'form')
    await waitForText('.job strong', 'ui-weekly')
    const [job] = (await api('/api/cron')).body.jobs
    expect(job).toMatchObject({ name: 'ui-weekly', schedule: '0 9 * * 1', timezone: 'Europe/Berlin', enabled: true, message: 'Weekly hello' })
    const card = `[data-job-id="${job.id}"]`

    await clickButton('Disable', card)
    await waitForText('[role=status]', 'Disabled ui-weekly.')
    expect((await api('/api/cron')).body.jobs[0].enabled).toBe(false)
    await clickButton('Enable', card)
    await waitForText('[role=status]', 'Enabled ui-weekly.')
    expect((await api('/api/cron')).body.jobs[0].enabled).toBe(true)

    await clickButton('Run now', card)
    await waitForText('[role=status]', 'Triggered ui-weekly.')
    const run = await waitFor(async () => (await api(`/api/cron/${job.id}/runs`)).body.runs.find((r: any) => r.status === 'ok'), { what: 'a finished run' })
    expect(run.reply).toBe('echo: Weekly hello')
    await clickButton('Runs', card)
    await waitForText(`${card} .run`, 'echo: Weekly hello')

    await clickButton('Delete', card)
    await clickButton('Delete ui-weekly', card)
    await page.waitForSelector(card, { hidden: true })
    expect((await api('/api/cron')).body.jobs).toEqual([])
  })

  uiTest('messages: a webhook message moves to delivered, its content shown as text', async () => {
    await go('#/messages')
    const accepted = await api('/api/message', { method: 'POST', body: JSON.stringify({ channel: 'myapp', chat_id: 'ui-chat', content: `Hello ${PROBE}` }) })
    expect(accepted.status).toBe(202)
    const id = accepted.body.message_id
    await page.waitForSelector(`[data-id="${id}"][data-state="delivered"]`, { timeout: 10_000 })
    await waitForText(`[data-id="${id}"] .text`, `Hello ${PROBE}`)
    await waitForText(`[data-id="${id}"] .reply`, `echo: Hello ${PROBE}`)
    expect(w.receiver.received.some((d) => d.body?.data?.content === `echo: Hello ${PROBE}` || JSON.stringify(d.body).includes('echo: Hello'))).toBe(true)
    expect(await page.$(`[data-id="${id}"] img`)).toBeNull()

    // A delivery that keeps failing ends as failed, with its error on the page.
    w.receiver.statuses.push(500, 500, 500)
    const failing = (await api('/api/message', { method: 'POST', body: JSON.stringify({ channel: 'myapp', chat_id: 'ui-chat', content: 'this one fails' }) })).body.message_id
    await page.waitForSelector(`[data-id="${failing}"][data-state="failed"] .error`, { timeout: 10_000 })
    await waitForText(`[data-id="${failing}"] .error`, '500')
  })

  uiTest('status: version, channels, model, queue; a pairing request approved from the page', async () => {
    w.telegram.pushMessage(9001, 'hello?', { id: 9001, username: 'stranger' })
    const request = await waitFor(async () => (await api('/api/pairing')).body.requests[0], { what: 'a pairing request' })
    const { version } = (await api('/api/status')).body
    await go('#/status')
    await waitForText('#gw-title + .facts', version)
    await waitForText('#channels-title + ul', 'myapp')
    await waitForText('#channels-title + ul', 'telegram')
    await waitForText('#models-title ~ ul', 'fake/echo')
    await waitForText('#queue-title ~ .facts', 'delivered')
    await waitForText('#pairing-title ~ ul code', request.code)
    if (docsDir) await screenshot(page, docsDir, 'ui-status')
    await clickButton('Approve', '#pairing-title ~ ul')
    await waitFor(async () => (await api('/api/pairing')).body.approved.some((a: any) => a.sender_id === '9001'), { what: 'the approval' })
    await waitForText('[role=status]', `Approved ${request.code}`)
  })

  uiTest('status: an invalid config file is shown, and goes away once fixed', async () => {
    const path = configPathOf(w.home)
    const good = readFileSync(path, 'utf8')
    try {
      writeFileSync(path, good.replace(/"agent"\s*:\s*\{/, '"agent": { "maxSteps": "many",'))
      expect((await api('/api/config/reload', { method: 'POST' })).status).toBe(422)
      // Opened afresh (the page reads the status when it opens, then every few seconds).
      await go('#/chat')
      await go('#/status')
      await waitForText('#gw-title ~ [role=alert]', 'agent.maxSteps')
    } finally {
      writeFileSync(path, good)
    }
    expect((await api('/api/config/reload', { method: 'POST' })).status).toBe(200)
    await go('#/chat')
    await go('#/status')
    await waitForText('#gw-title + .facts', 'Version')
    expect(await page.$('#gw-title ~ [role=alert]')).toBeNull()
  })

  uiTest('logs: a new line appears live; the level filter and the scroll-back hold', async () => {
    await go('#/logs')
    await waitForText('.logs [role=status]', 'live')
    await fetch(`${gateway.url}/api/nope-ui-log-probe`, { headers: { authorization: `Bearer ${TOKEN}` } })
    await waitForText('.log-msg', 'GET /api/nope-ui-log-probe 404')

    // Untrusted text in a log line: a failed turn's reason quotes the provider's answer.
    w.llm.queue.push({ status: 400, body: JSON.stringify({ error: { message: PROBE } }) })
    expect((await api('/api/agent', { method: 'POST', body: JSON.stringify({ message: 'fail please', session: 'ui-fail' }) })).status).toBe(502)
    await waitForText('.log-error .log-msg', 'turn failed')
    await waitForText('.log-error .log-extra', PROBE.replaceAll('"', '\\"'))
    expect(await page.$('.log-box img')).toBeNull()

    await page.select('#log-level', 'error')
    await page.waitForFunction(() => {
      const lines = [...document.querySelectorAll('.log')]
      return lines.length > 0 && lines.every((el) => el.classList.contains('log-error') || el.classList.contains('log-fatal'))
    }, {})
    await page.select('#log-level', 'info')
    await waitForText('.log-msg', 'GET /api/nope-ui-log-probe 404')

    // Enough lines to scroll; scrolled up, new lines no longer pull the view down.
    await Promise.all(Array.from({ length: 60 }, (_, i) => api(`/api/nope-filler-${i}`)))
    await waitForText('.log-msg', 'nope-filler-59')
    await page.evaluate(() => {
      const box = document.querySelector('.log-box')!
      box.scrollTop = 0
      box.dispatchEvent(new Event('scroll'))
    })
    await page.waitForSelector('.jump')
    await api('/api/nope-after-scroll')
    await waitForText('.log-msg', 'nope-after-scroll')
    expect(await page.evaluate(() => document.querySelector('.log-box')!.scrollTop)).toBe(0)
    await clickButton('Follow new lines ↓')
    await page.waitForFunction(() => {
      const box = document.querySelector('.log-box')!
      return box.scrollHeight - box.scrollTop - box.clientHeight < 24
    })
  })

  uiTest('XSS: markup in a chat message and reply stays text; only the deliberately injected probe is blocked by the CSP', async () => {
    await go('#/chat/ui-xss')
    await page.waitForSelector('#chat-input')
    await page.type('#chat-input', PROBE)
    await page.keyboard.press('Enter')
    await waitForText('.chat-scroll .msg-assistant .bubble', `echo: ${PROBE}`)
    await waitForText('.chat-scroll .msg-user .bubble', PROBE)
    expect(await page.$('.chat-scroll img')).toBeNull()
    expect(await page.evaluate(() => window.__xss)).toBeUndefined()
    // Everything the tests showed so far (chat, logs with the probe, messages) ran without a CSP violation.
    expect(await page.evaluate(() => window.__csp)).toEqual([])
    expect(tab.console.filter((line) => /Content Security Policy/i.test(line))).toEqual([])
    expect(tab.errors).toEqual([])

    // The control: the same markup put into the page as HTML does not run either, because the CSP blocks it.
    await page.evaluate((probe: string) => {
      const holder = document.createElement('div')
      holder.innerHTML = probe
      document.body.append(holder)
    }, PROBE)
    await page.waitForFunction(() => window.__csp.length > 0)
    expect(await page.evaluate(() => window.__xss)).toBeUndefined()
    expect(await page.evaluate(() => window.__csp)).toEqual([expect.stringMatching(/^script-src/)])
  })

  uiTest('usable at 375 px, in both themes, by keyboard', async () => {
    await page.setViewport({ width: 375, height: 740 })
    for (const hash of ['#/chat/ui-e2e', '#/cron', '#/status', '#/logs', '#/messages', '#/sessions']) {
      await go(hash)
      await page.waitForSelector('main h1, #chat-input')
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      expect({ hash, overflow }).toEqual({ hash, overflow: 0 })
    }
    const before = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    await page.click('.theme-toggle')
    const theme = await page.evaluate(() => ({ attr: document.documentElement.dataset.theme, stored: localStorage.getItem('xopcbot.theme'), bg: getComputedStyle(document.body).backgroundColor }))
    expect(theme.attr).toBe(theme.stored!)
    expect(theme.bg).not.toBe(before)
    await page.reload()
    await page.waitForSelector('nav[aria-label=Pages]')
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe(theme.attr!)
    // Tab reaches the pages as real links, the focus is visible, Enter follows the link.
    for (let i = 0; i < 12 && (await page.evaluate(() => document.activeElement?.getAttribute('href'))) !== '#/cron'; i++) await page.keyboard.press('Tab')
    expect(await page.evaluate(() => document.activeElement?.getAttribute('href'))).toBe('#/cron')
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none')
    await page.keyboard.press('Enter')
    await page.waitForFunction(() => location.hash === '#/cron')
    await page.setViewport({ width: 1280, height: 800 })
  })

  uiTest('a token that stops working returns to the login with a message', async () => {
    await page.evaluate(() => sessionStorage.setItem('xopcbot.token', 'revoked-token'))
    await go('#/sessions')
    await waitForText('[role=alert]', 'refused the token')
    expect(await page.evaluate(() => sessionStorage.getItem('xopcbot.token'))).toBeNull()
    await page.type('#token', TOKEN)
    await page.click('form button[type=submit]')
    await page.waitForSelector('nav[aria-label=Pages]')
  })

  uiTest('without a configured token, a loopback browser goes straight in; the logs say they need one', async () => {
    const open = await startGateway({ home: homeWithConfig({ gateway: { host: '127.0.0.1' }, agent: w.config.agent, providers: w.config.providers }) })
    try {
      const other = await session.newPage()
      await other.page.goto(`${open.url}/#/status`)
      await other.page.waitForSelector('nav[aria-label=Pages]')
      expect(await other.page.$('#token')).toBeNull()
      expect(await other.page.evaluate(() => [...document.querySelectorAll('.top-actions button')].map((b: any) => b.textContent))).not.toContain('Sign out')
      await other.page.evaluate(() => {
        location.hash = '#/logs'
      })
      await other.page.waitForFunction(() => (document.querySelector('[role=alert]')?.textContent ?? '').includes('Logs always need the API token'))
      expect(await other.page.$('nav[aria-label=Pages]')).not.toBeNull()
      await screenshot(other.page, session.shots, 'no-token-logs')
      await other.page.close()
    } finally {
      await open.stop()
    }
  })
})
