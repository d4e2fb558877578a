import { Elysia } from 'elysia'
import { gzipSync } from 'node:zlib'
import { basename } from 'node:path'
import page from '../ui/index.html'
import { AppError } from '../errors'
import { UI_PREFIX } from './ui-paths'

/**
 * The Control UI (SPEC §14): `GET /` and its assets under `/ui/`, bundled into the executable by Bun's HTML
 * import and served from memory.
 *
 * They pass through the front door like every request (the request gate, the request id, the log line) instead
 * of Bun's static `routes`: those cannot carry the headers below, and a route served by Bun alone would skip the
 * gate. The page is public; the data it shows comes from /api/*, under the API's own auth.
 */

export const UI_HEADERS: Readonly<Record<string, string>> = {
  // No inline script or style, nothing from elsewhere: a message or log line that gets into the page as
  // markup still cannot run.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
}

interface Asset {
  body: Uint8Array
  gzip: Uint8Array | null
  type: string
  etag: string
  cache: string
}

/** Smaller than this, compressing costs more than it saves. */
const GZIP_FROM = 1024

function asset(body: Uint8Array, type: string, immutable: boolean): Asset {
  const gzip = body.byteLength >= GZIP_FROM ? gzipSync(body, { level: 9 }) : null
  return {
    body,
    gzip,
    type,
    etag: `"${Bun.hash(body).toString(36)}"`,
    // Asset names carry a content hash: a new build has new names, so they can be kept for good; the page
    // is asked again every time (it names the current assets).
    cache: immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  }
}

/** The bundle as the executable holds it (`files`, built by `bun build --compile`), else built once from source. */
async function bundle(): Promise<{ html: string; files: { name: string; body: Uint8Array; type: string }[] }> {
  if (page.files) {
    const html = await Bun.file(page.index).text()
    const files = await Promise.all(
      page.files.filter((file) => file.loader !== 'html').map(async (file) => ({ name: basename(file.path), body: await Bun.file(file.path).bytes(), type: file.headers['content-type'] })),
    )
    return { html, files }
  }
  const built = await Bun.build({ entrypoints: [page.index], target: 'browser', minify: true, define: { 'process.env.NODE_ENV': '"production"' } })
  if (!built.success) throw new Error(`the Control UI did not build: ${built.logs.map(String).join('; ')}`)
  let html = ''
  const files: { name: string; body: Uint8Array; type: string }[] = []
  for (const output of built.outputs) {
    if (output.type.startsWith('text/html')) html = await output.text()
    else files.push({ name: basename(output.path), body: new Uint8Array(await output.arrayBuffer()), type: output.type })
  }
  return { html, files }
}

/** Loads the bundle on first use and keeps it; `respond` answers `/` and `/ui/<asset>`. */
export class UiAssets {
  private loaded: Promise<Map<string, Asset>> | null = null

  private load(): Promise<Map<string, Asset>> {
    return (this.loaded ??= bundle().then(({ html, files }) => {
      // The bundler names files from the site's root ("/chunk-….js"), in the page and in the scripts' imports;
      // they are served under /ui/.
      const names = files.map((file) => file.name)
      const served = (text: string) => names.reduce((out, name) => out.replaceAll(`"/${name}"`, `"${UI_PREFIX}${name}"`).replaceAll(`"./${name}"`, `"${UI_PREFIX}${name}"`), text)
      const assets = new Map<string, Asset>()
      for (const file of files) {
        let body = file.body
        if (file.type.startsWith('text/javascript')) {
          const text = served(new TextDecoder().decode(body))
          // A script that imports something outside the bundle would fail in the browser; say so here (and in the
          // build's smoke test) instead. It happens when the UI imports a CommonJS package: the executable's
          // code-splitting then shares the CommonJS helper with the server's chunks.
          const foreign = [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*"(\/[^"]*)"/g)].map((match) => match[1]!).filter((path) => !path.startsWith(UI_PREFIX))
          if (foreign.length) throw new Error(`the Control UI's ${file.name} imports ${foreign.join(', ')}, which is not part of its bundle`)
          body = new TextEncoder().encode(text)
        }
        assets.set(UI_PREFIX + file.name, asset(body, file.type, true))
      }
      assets.set('/', asset(new TextEncoder().encode(served(html)), 'text/html;charset=utf-8', false))
      return assets
    }))
  }

  async respond(path: string, request: Request): Promise<Response> {
    const found = (await this.load()).get(path)
    if (!found) throw new AppError('NOT_FOUND', `no such file: ${path}`)
    const headers: Record<string, string> = { ...UI_HEADERS, 'content-type': found.type, etag: found.etag, 'cache-control': found.cache, vary: 'accept-encoding' }
    if (request.headers.get('if-none-match') === found.etag) return new Response(null, { status: 304, headers })
    if (found.gzip && /\bgzip\b/.test(request.headers.get('accept-encoding') ?? '')) {
      headers['content-encoding'] = 'gzip'
      return new Response(found.gzip, { headers })
    }
    return new Response(found.body, { headers })
  }
}

export function uiRoutes(ui: UiAssets) {
  return new Elysia({ name: 'ui' })
    .get('/', function controlUi({ request }) {
      return ui.respond('/', request)
    })
    .get(`${UI_PREFIX}:file`, function controlUiAsset({ params, request }) {
      return ui.respond(UI_PREFIX + params.file, request)
    })
}
