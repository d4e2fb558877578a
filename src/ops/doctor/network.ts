import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { modelNames, PRESETS, resolveModelName, type ResolvedModel } from '../../agent/providers'
import { signatureHeaders } from '../../channels/webhook/signature'
import type { Paths } from '../../config/paths'
import type { TelegramChannel, WebhookChannel } from '../../config/schema'
import { AppError } from '../../errors'
import { outboundFetch, RedirectRefused } from '../../net/outbound'
import { cliCommand, fail, ok, skip, warn, type Check, type DoctorContext } from './check'
import type { ConfigView } from './config'
import { readCapped } from '../../net/read-capped'

/** The local clock against a server's `Date` header, taken from one exchange. */
export interface ClockSample {
  origin: string
  /** the server's Date header (whole seconds, epoch ms) */
  serverMs: number
  /** local time halfway through the exchange */
  localMs: number
  roundTripMs: number
}

export interface Probe {
  response: Response
  text: string
}

/**
 * One request with a time limit, never following a redirect (like every request of the gateway), with its
 * `Date` header kept as a clock sample. A failure is an Error whose message names the server by its origin only:
 * the path of a Telegram request holds the bot token.
 */
/** The most of an answer a check reads (a model list, getMe, a webhook receiver's reply). */
const MAX_ANSWER_BYTES = 1024 * 1024

export async function probe(ctx: DoctorContext, url: string, init: RequestInit, samples: ClockSample[]): Promise<Probe> {
  const origin = new URL(url).origin
  const sentAt = ctx.now()
  let response: Response
  let text: string
  try {
    response = await outboundFetch(url, { ...init, signal: AbortSignal.timeout(ctx.timeoutMs) }, { target: origin })
    // A server's answer is read only as far as a check needs: a hostile one could send gigabytes within the timeout.
    const { bytes, cut } = await readCapped(response.body, MAX_ANSWER_BYTES)
    text = new TextDecoder().decode(bytes) + (cut ? '…' : '')
  } catch (error) {
    if (error instanceof RedirectRefused) throw error
    const name = (error as Error).name
    if (name === 'TimeoutError' || name === 'AbortError') throw new Error(`${origin} did not answer within ${ctx.timeoutMs / 1000} s`)
    throw new Error(`cannot reach ${origin}: ${(error as Error).message}`)
  }
  const receivedAt = ctx.now()
  const date = Date.parse(response.headers.get('date') ?? '')
  if (Number.isFinite(date)) samples.push({ origin, serverMs: date, localMs: (sentAt + receivedAt) / 2, roundTripMs: receivedAt - sentAt })
  return { response, text }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

const ModelList = z.object({ data: z.array(z.object({ id: z.string() })) })

/** How to ask a provider for its models: GET <baseURL>/models, which costs no tokens. */
function modelsRequest(model: ResolvedModel): { url: string; headers: Record<string, string> } {
  const auth: Record<string, string> =
    model.type === 'anthropic'
      ? { 'x-api-key': model.apiKey ?? '', 'anthropic-version': '2023-06-01' }
      : model.apiKey
        ? { authorization: `Bearer ${model.apiKey}` }
        : {}
  return { url: `${model.baseURL}/models`, headers: { ...model.headers, ...auth } }
}

/** A base URL as it may be printed: a user name, password or query (`?key=…`) in it can be a credential. */
function shownBaseUrl(url: string): string {
  const parsed = new URL(url)
  parsed.username = ''
  parsed.password = ''
  parsed.search = ''
  return parsed.href
}

function keyFix(provider: string, configPath: string): string {
  const keyVar = (PRESETS as Record<string, { keyVar: string | null } | undefined>)[provider]?.keyVar
  return `set a valid key in providers.${provider}.apiKey in ${configPath}${keyVar ? ` (or ${keyVar})` : ''}`
}

/**
 * Each provider of `agent.model` (the primary's, then the fallbacks'): configured, reachable, and its key
 * accepted, asked with one model list request. A problem with the primary's provider is a failure; with a
 * fallback's only a warning, since turns still have a model.
 */
export async function checkProviders(ctx: DoctorContext, view: ConfigView, samples: ClockSample[]): Promise<Check[]> {
  if (view.unreadable.has('model')) return [skip('provider', 'agent and providers cannot be read from the config (see config)')]
  const byProvider = new Map<string, { models: string[]; primary: boolean }>()
  modelNames(view.config.agent.model).forEach((name, index) => {
    const provider = name.slice(0, name.indexOf('/'))
    const entry = byProvider.get(provider) ?? { models: [], primary: index === 0 }
    entry.models.push(name.slice(provider.length + 1))
    byProvider.set(provider, entry)
  })
  const configPath = view.paths.configPath
  return Promise.all(
    [...byProvider].map(async ([provider, { models, primary }]): Promise<Check> => {
      const id = `provider.${provider}`
      const bad = primary ? fail : warn
      const role = primary ? '' : ' (fallback)'
      const resolved = resolveModelName(`${provider}/${models[0]}`, view.config, ctx.env)
      if (resolved instanceof AppError) return bad(id, `${resolved.message}${role}`, resolved.message.startsWith('no API key') ? keyFix(provider, configPath) : `edit agent.model or providers in ${configPath}`)
      const request = modelsRequest(resolved)
      const origin = new URL(request.url).origin
      let answer: Probe
      try {
        answer = await probe(ctx, request.url, { headers: request.headers }, samples)
      } catch (error) {
        return bad(id, `${(error as Error).message}${role}`, `check the network, and the baseURL of providers.${provider} (${shownBaseUrl(resolved.baseURL)})`)
      }
      const { status } = answer.response
      if (status === 401 || status === 403) return bad(id, `${origin} refused the API key (HTTP ${status})${role}`, keyFix(provider, configPath))
      if (status === 404) return warn(id, `${origin} has no GET ${new URL(request.url).pathname} (HTTP 404): reachable, but the key cannot be verified${role}`, `check the baseURL of providers.${provider} (${shownBaseUrl(resolved.baseURL)})`)
      if (!answer.response.ok) return warn(id, `${origin} answered GET /models with HTTP ${status}${role}`, 'run xopcbot doctor again later; if it persists, check the provider\'s status page')
      const listed = ModelList.safeParse(parseJson(answer.text))
      const known = listed.success ? new Set(listed.data.data.map((m) => m.id)) : null
      // An empty or partial list (Anthropic pages it and leaves out aliases) says nothing about a model.
      const missing = known && known.size && resolved.type !== 'anthropic' ? models.filter((m) => !known.has(m)) : []
      if (missing.length) {
        return warn(id, `${origin} accepted the key, but does not list ${missing.map((m) => `${provider}/${m}`).join(', ')}${role}`, `check the model names in agent.model in ${configPath}`)
      }
      return ok(id, `${origin} accepted the key${known ? ` (${known.size} model${known.size === 1 ? '' : 's'} listed)` : ''}${role}`)
    }),
  )
}

/** A channel as a running gateway's /api/status reports it. */
export const GatewayChannel = z.object({ state: z.string(), error: z.string().optional() })
export type GatewayChannel = z.infer<typeof GatewayChannel>

/** What the running gateway says about a channel, appended to its line; a problem there is a warning. */
function withGatewayState(check: Check, report: GatewayChannel | null | undefined, running: boolean, paths: Paths): Check {
  if (!running || check.status === 'fail') return check
  if (!report) return { ...check, summary: `${check.summary}; the running gateway does not have it`, ...(check.status === 'ok' ? { status: 'warn' as const, fix: `run: ${cliCommand(paths, 'gateway restart')} (it runs an older config)` } : {}) }
  const state = report.error ? `${report.state}: ${report.error}` : report.state
  if (report.state === 'running' || report.state === 'starting') return { ...check, summary: `${check.summary}; ${state} in the gateway` }
  if (check.status === 'warn') return { ...check, summary: `${check.summary}; ${state} in the gateway` }
  // Disabled or stopped there while enabled here: the gateway runs an older config.
  const fix = report.state === 'disabled' || report.state === 'stopped' ? `run: ${cliCommand(paths, 'gateway restart')} (it runs an older config)` : `see: ${cliCommand(paths, 'gateway logs --level warn')}`
  return { ...check, status: 'warn', summary: `${check.summary}; but ${state} in the gateway`, fix }
}

const TelegramAnswer = z.object({ ok: z.boolean(), result: z.object({ username: z.string().optional() }).optional(), description: z.string().optional() })

/** A Telegram channel: its token, asked with getMe on its apiRoot (cheap, and harmless while the gateway polls). */
export async function checkTelegram(ctx: DoctorContext, name: string, channel: TelegramChannel, view: ConfigView, samples: ClockSample[], report: GatewayChannel | null | undefined, running: boolean): Promise<Check> {
  const id = `channel.${name}`
  if (!channel.enabled) return skip(id, 'telegram: disabled')
  const apiRoot = channel.apiRoot.replace(/\/+$/, '')
  let answer: Probe
  try {
    answer = await probe(ctx, `${apiRoot}/bot${channel.token}/getMe`, {}, samples)
  } catch (error) {
    return fail(id, `telegram: ${(error as Error).message}`, `check the network${channel.apiRoot === 'https://api.telegram.org' ? '' : `, and channels.${name}.apiRoot`}`)
  }
  const parsed = TelegramAnswer.safeParse(parseJson(answer.text))
  const { status } = answer.response
  if (status === 401 || status === 404) {
    return fail(id, `telegram: the bot token was refused (HTTP ${status}${parsed.success && parsed.data.description ? `: ${parsed.data.description}` : ''})`, `get the bot's token from @BotFather and set channels.${name}.token in ${view.paths.configPath}`)
  }
  if (!answer.response.ok || !parsed.success || !parsed.data.ok) {
    return warn(id, `telegram: getMe answered HTTP ${status}${parsed.success && parsed.data.description ? ` (${parsed.data.description})` : ''}`, 'run xopcbot doctor again later')
  }
  const bot = parsed.data.result?.username ? `@${parsed.data.result.username}` : 'the bot'
  return withGatewayState(ok(id, `telegram: token valid for ${bot} (${channel.mode})`), report, running, view.paths)
}

/**
 * A webhook channel: its configuration, and a signed ping to its receiver (`{"event":"ping"}`, signed like every
 * delivery). Any answer proves the receiver is reachable; 401 or 403 says it refused the signature.
 */
export async function checkWebhook(ctx: DoctorContext, name: string, channel: WebhookChannel, view: ConfigView, samples: ClockSample[], report: GatewayChannel | null | undefined, running: boolean): Promise<Check> {
  const id = `channel.${name}`
  if (!channel.enabled) return skip(id, 'webhook: disabled')
  const origin = new URL(channel.url).origin
  const described = `webhook: replies go to ${origin} (signed, ${channel.retry.attempts} attempts)`
  const body = JSON.stringify({ event: 'ping' })
  let answer: Probe
  try {
    answer = await probe(
      ctx,
      channel.url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'xopcbot-doctor', ...signatureHeaders(channel.secret, body, ctx.now(), `ping_${randomUUID()}`) }, body },
      samples,
    )
  } catch (error) {
    if (error instanceof RedirectRefused) return fail(id, `${described}, but ${error.message}`, `set channels.${name}.url to the address the redirect points to`)
    return fail(id, `${described}, but ${(error as Error).message}`, `check channels.${name}.url and that the receiver runs`)
  }
  const { status } = answer.response
  if (status === 401 || status === 403) return warn(id, `${described}: the receiver refused the signed ping (HTTP ${status})`, `check that the receiver verifies with the secret of channels.${name}.secret`)
  if (status >= 500) return warn(id, `${described}: the receiver answered the signed ping with HTTP ${status}`, 'check the receiver (its logs)')
  return withGatewayState(ok(id, `${described}: the receiver answered a signed ping (HTTP ${status})`), report, running, view.paths)
}

/** Beyond this the clock is worth a warning, and beyond the webhook signatures' tolerance it breaks them. */
export const CLOCK_WARN_SECONDS = 30
export const CLOCK_FAIL_SECONDS = 300

/**
 * The local clock against the `Date` headers seen, judged by the exchange with the shortest round trip. A Date
 * header has whole seconds, so the server's time lies in [date, date + 1 s).
 */
export function checkClock(samples: ClockSample[]): Check {
  const best = [...samples].sort((a, b) => a.roundTripMs - b.roundTripMs)[0]
  if (!best) return skip('clock', 'no server answered with a Date header to compare with')
  const skewSeconds = Math.round((best.serverMs + 500 - best.localMs) / 1000)
  const size = Math.abs(skewSeconds)
  const direction = skewSeconds > 0 ? 'behind' : 'ahead of'
  const fix = 'turn on time synchronisation (on Linux: timedatectl set-ntp true)'
  if (size > CLOCK_FAIL_SECONDS) return fail('clock', `the local clock is ${size} s ${direction} ${best.origin}: signed webhook requests are refused beyond ${CLOCK_FAIL_SECONDS} s`, fix)
  if (size > CLOCK_WARN_SECONDS) return warn('clock', `the local clock is ${size} s ${direction} ${best.origin}`, fix)
  return ok('clock', `within ${Math.max(size, 1)} s of ${best.origin}`)
}
