/**
 * A page's main content as Markdown: Readability picks the article out of the page (navigation, ads, scripts
 * and footers fall away), Turndown writes it as Markdown. Loaded by `web_fetch` on its first HTML page only, so
 * neither the start-up nor the idle gateway pays for these libraries.
 */
import { Readability } from '@mozilla/readability'
import { parseHTML } from 'linkedom'
import type TurndownService from 'turndown'
// Turndown's browser build: given a DOM node it needs no parser, and its Node build would bundle the domino DOM
// (several MB) that linkedom already replaces.
// @ts-expect-error no type declarations for the browser build; its API is TurndownService's
import Turndown from 'turndown/lib/turndown.browser.es.js'

/**
 * Elements that are never the page's content, removed before Readability looks: it scores by text and class
 * names, and on a short page it would keep a <nav> or a cookie banner. A <header> or <footer> inside the article
 * (its title, its byline) stays.
 */
const NOISE = [
  'script, style, noscript, template, iframe, object, embed, svg, canvas, button, dialog, nav, aside',
  '[role="navigation"], [role="banner"], [role="contentinfo"], [role="complementary"], [role="dialog"], [aria-hidden="true"], [hidden]',
].join(', ')
const PAGE_FRAME = 'header, footer'

export interface Readable {
  title: string | null
  markdown: string
}

/**
 * Readability's time grows steeply with nesting (1,600 nested <div>s, 8 KiB, took 12 s) and Turndown recurses
 * per level, and both run synchronously on the gateway's only thread: a page past these bounds is given to the
 * model as its plain text instead.
 */
const MAX_DEPTH = 100
const MAX_ELEMENTS = 20_000
const MAX_HTML_CHARS = 1_000_000

/** Whether the page is too deep, too big or too long for Readability and Turndown (counted without recursion). */
function tooComplex(html: string, root: { children: ArrayLike<unknown> }): boolean {
  if (html.length > MAX_HTML_CHARS) return true
  const stack: [{ children: ArrayLike<unknown> }, number][] = [[root, 0]]
  let elements = 0
  while (stack.length) {
    const [node, depth] = stack.pop()!
    if (depth > MAX_DEPTH || ++elements > MAX_ELEMENTS) return true
    for (let i = 0; i < node.children.length; i++) stack.push([node.children[i] as { children: ArrayLike<unknown> }, depth + 1])
  }
  return false
}

export function htmlToMarkdown(html: string, pageUrl: string): Readable {
  const { document } = parseHTML(html)
  if (tooComplex(html, document.documentElement ?? document)) {
    for (const element of document.querySelectorAll('script, style, noscript, template')) element.remove()
    const text = (document.body ?? document.documentElement)?.textContent ?? ''
    return { title: document.title?.trim() || null, markdown: text.replace(/[ \t]+/g, ' ').replace(/\s*\n\s*/g, '\n').trim() }
  }
  // Links and images relative to the page are made absolute, so the model can follow them.
  for (const [selector, attribute] of [['a[href]', 'href'], ['img[src]', 'src']] as const) {
    for (const element of document.querySelectorAll(selector)) {
      const value = element.getAttribute(attribute)!
      try {
        element.setAttribute(attribute, new URL(value, pageUrl).href)
      } catch {
        element.removeAttribute(attribute)
      }
    }
  }
  const title = document.title?.trim() || null
  for (const element of document.querySelectorAll(NOISE)) element.remove()
  for (const element of document.querySelectorAll(PAGE_FRAME)) if (!element.closest('article, main, [role="main"]')) element.remove()
  // Readability changes the document it reads; it gets its own copy so the fallback below still has the page.
  const article = new Readability(document.cloneNode(true) as never, { charThreshold: 200 }).parse()
  const root = article?.content ? parseHTML(`<!doctype html><html><body>${article.content}</body></html>`).document.body : (document.body ?? document.documentElement)
  const turndown: TurndownService = new (Turndown as typeof TurndownService)({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' })
  turndown.remove(['script', 'style', 'noscript', 'template', 'iframe'] as never)
  // Inline images (data: URIs) are bytes, not text: only their alt text is kept.
  turndown.addRule('images', {
    filter: 'img',
    replacement: (_content, node) => {
      const element = node as unknown as { getAttribute(name: string): string | null }
      const alt = (element.getAttribute('alt') ?? '').replace(/\s+/g, ' ').trim()
      const src = element.getAttribute('src') ?? ''
      return /^https?:/i.test(src) ? `![${alt}](${src})` : alt
    },
  })
  const markdown = turndown
    .turndown(root as never)
    .replace(/\n{3,}/g, '\n\n')
    .trim()
  return { title: article?.title?.trim() || title, markdown }
}
