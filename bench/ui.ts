/**
 * Control UI figures of the compiled binary (npm run bench:ui): the bundle's size (the page and its assets as
 * the gateway serves them, which is what the UI adds to the executable), the first request for the page after a
 * start, and the first load in headless Chromium — a fresh browser context each time (nothing cached), from
 * navigation to the app drawn — next to a static page of a few bytes from the same server.
 *   --quick    fewer loads
 * Needs Debian's chromium (`apt-get install chromium`); without it the browser rows are left out, saying why.
 */
import { existsSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import puppeteer from 'puppeteer-core'
import { aim, ensureBinary, gatewayHome, median, printTable, quick, stop, startGateway, type Row } from './lib'

// Browser globals, in code that runs in the page (the project's types are the server's).
declare const window: { __drawnAt?: number }
declare const document: { querySelector(selector: string): { childElementCount: number } | null }
declare const MutationObserver: new (callback: (records: unknown, observer: { disconnect(): void }) => void) => { observe(target: unknown, options: object): void }

const LOADS = quick ? 5 : 15
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path))
const binary = ensureBinary()
const rows: Row[] = []
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`

const started = await startGateway(binary, gatewayHome('ui'))
try {
  // The first request for the page after the start: the bundle is read from the executable then.
  let t = performance.now()
  const page = await fetch(`${started.url}/`)
  const html = await page.text()
  const firstPageMs = performance.now() - t
  const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((match) => match[1]!)
  let raw = Buffer.byteLength(html)
  let gzipped = gzipSync(html).byteLength
  for (const asset of assets) {
    const body = new Uint8Array(await (await fetch(`${started.url}${asset}`, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer())
    raw += body.byteLength
    gzipped += gzipSync(body).byteLength
  }
  rows.push(aim(['UI bundle (page + assets, minified)', kb(raw), `${assets.length + 1} files, ${kb(gzipped)} gzipped (as served to browsers); aim ≤ 300 KB`], raw <= 300 * 1024))
  rows.push(['first GET / after start', `${firstPageMs.toFixed(1)} ms`, 'the bundle is read from the executable on first use'])

  if (!CHROMIUM) {
    rows.push(['first load in Chromium', 'not measured', 'chromium is not installed (apt-get install chromium)'])
  } else {
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
    try {
      // The page's own clock (0 = the navigation's start) when the app first draws into #app, seen by an observer
      // that is in place before the page's first byte; and the wall time of the whole navigation as puppeteer sees it.
      const load = async (url: string) => {
        const context = await browser.createBrowserContext()
        try {
          const tab = await context.newPage()
          await tab.evaluateOnNewDocument(() => {
            const w = window
            new MutationObserver((_, observer) => {
              if (document.querySelector('#app')?.childElementCount) {
                w.__drawnAt ??= performance.now()
                observer.disconnect()
              }
            }).observe(document, { childList: true, subtree: true })
          })
          t = performance.now()
          await tab.goto(url)
          const drawnAt = (await tab.waitForFunction(() => window.__drawnAt)).jsonValue() as Promise<number>
          return { drawn: await drawnAt, wall: performance.now() - t }
        } finally {
          await context.close()
        }
      }
      const loads: { drawn: number; wall: number }[] = []
      for (let n = 0; n < LOADS; n++) loads.push(await load(`${started.url}/`))
      const drawn = median(loads.map((l) => l.drawn))
      rows.push(aim(['first load in Chromium: navigation → app drawn', `${drawn.toFixed(1)} ms`, `median of ${LOADS}, a fresh context (empty cache) each, the page's own clock; aim ≤ 100 ms`], drawn <= 100))
      rows.push(['  the same, wall time seen by the test driver', `${median(loads.map((l) => l.wall)).toFixed(1)} ms`, 'includes opening the tab and the driver round trips'])
    } finally {
      await browser.close()
    }
  }
} finally {
  await stop(started.proc)
}
printTable('Control UI', rows)
