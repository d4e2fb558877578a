import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer, { type Browser, type ConsoleMessage, type Page } from 'puppeteer-core'

/** Debian's Chromium: the browser the UI tests drive (`.ci/run` installs it). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * The path of a Chromium to drive, or why there is none. When it is missing, `apt-get install -y chromium` is
 * tried once (it works where the tests run as root, as in CI); elsewhere the suite is skipped and says why.
 */
export function findChromium(): { path: string } | { missing: string } {
  if (existsSync(CHROMIUM)) return { path: CHROMIUM }
  if (!process.env.CHROMIUM_PATH && process.platform === 'linux' && existsSync('/usr/bin/apt-get')) {
    const install = Bun.spawnSync(['apt-get', 'install', '-y', 'chromium'], { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    if (existsSync(CHROMIUM)) return { path: CHROMIUM }
    return { missing: `${CHROMIUM} is missing and "apt-get install -y chromium" failed (exit ${install.exitCode}): ${install.stderr.toString().trim().split('\n').at(-1) ?? ''}` }
  }
  return { missing: `${CHROMIUM} is missing (set CHROMIUM_PATH to a Chromium or Chrome executable)` }
}

export interface BrowserSession {
  browser: Browser
  /** where each test's screenshot goes */
  shots: string
  /** a fresh page (tab) at 1280×800 whose console messages and page errors are recorded */
  newPage: (viewport?: { width: number; height: number }) => Promise<WatchedPage>
  close: () => Promise<void>
}

export interface WatchedPage {
  page: Page
  /** console messages (type: text), in order */
  console: string[]
  /** uncaught exceptions in the page */
  errors: string[]
}

/** One headless Chromium for a whole test file. */
export async function launchBrowser(executablePath: string): Promise<BrowserSession> {
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    // --no-sandbox: CI runs the tests as root in a container, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions'],
  })
  const shots = mkdtempSync(join(tmpdir(), 'xopcbot-ui-shots-'))
  return {
    browser,
    shots,
    newPage: async (viewport = { width: 1280, height: 800 }) => {
      const page = await browser.newPage()
      await page.setViewport(viewport)
      const watched: WatchedPage = { page, console: [], errors: [] }
      page.on('console', (message: ConsoleMessage) => watched.console.push(`${message.type()}: ${message.text()}`))
      page.on('pageerror', (error) => watched.errors.push(String((error as Error)?.message ?? error)))
      return watched
    },
    close: () => browser.close(),
  }
}

/** Saves a PNG of the page as `<dir>/<name>.png` and returns its path. */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const path = join(dir, `${name.replace(/[^a-z0-9-]+/gi, '-').toLowerCase()}.png`)
  await page.screenshot({ path: path as `${string}.png` })
  return path
}
