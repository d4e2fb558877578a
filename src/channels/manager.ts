import type { Config } from '../config/schema'
import type { Logger } from '../logging/logger'
import type { StateStore } from '../storage/db'
import type { WebhookEventLog } from '../storage/webhook-events'
import type { ChannelState, Intake, Source } from './channel'
import type { PairingStore } from './pairing'
import type { Senders } from './senders'
import type { Backoff } from './supervisor'
import { TelegramSource } from './telegram/source'
import { WebhookSource } from './webhook/source'

/** A channel in /api/status: `error` with `failed` and `retrying`; with `retrying` also when the next attempt is. */
export interface ChannelReport {
  type: 'telegram' | 'webhook'
  state: ChannelState['state'] | 'disabled'
  error?: string
  /** ISO time of the next attempt */
  next_retry_at?: string
  /** ms until then (0: the attempt is under way) */
  retry_in_ms?: number
  /** failed attempts in a row */
  failures?: number
}

/** The report of one channel's state at `now` (epoch ms). */
export function reportOf(type: ChannelReport['type'], state: ChannelState, now: number): ChannelReport {
  if (state.state === 'failed') return { type, state: state.state, error: state.error }
  if (state.state === 'retrying') {
    return {
      type,
      state: state.state,
      error: state.error,
      next_retry_at: new Date(state.nextRetryAt).toISOString(),
      retry_in_ms: Math.max(0, state.nextRetryAt - now),
      failures: state.failures,
    }
  }
  return { type, state: state.state }
}

/** A source that takes POST /api/webhook/<name>. */
export type WebhookReceiver = Source & Required<Pick<Source, 'receive'>>

export interface ChannelManagerDeps {
  /** where received messages are stored (the inbound queue) */
  intake: Intake
  /** the outbound halves, built before: a Telegram source shares its sender's API client */
  senders: Senders
  state: StateStore
  /** approved chat senders and pending pairing codes */
  pairing: PairingStore
  /** event ids and signatures of webhook events accepted recently (replay protection) */
  webhookEvents: WebhookEventLog
  log: Logger
  /** reconnect waits of the sources (default 1 s doubling to 60 s, ±20 %); tests shorten them */
  backoff?: Backoff
}

/**
 * The inbound half of every enabled channel, handed the queue: starts the sources, reports their state, stops
 * them — and keeps one channel's failure from touching the gateway or the others: each source supervises its
 * own connection (retrying with backoff, see ./supervisor.ts), and one that fails for good is logged, reported
 * as failed, and left.
 */
export class ChannelManager {
  private readonly sources = new Map<string, Source>()
  /** set by stopAll: a reload under way then starts nothing new */
  private stopped = false
  private readonly log: Logger

  constructor(
    private config: Config['channels'],
    private readonly deps: ChannelManagerDeps,
  ) {
    this.log = deps.log.withTag('channels')
    for (const [name, channel] of Object.entries(config)) {
      const source = this.build(name, channel)
      if (source) this.sources.set(name, source)
    }
  }

  /** The source of an enabled channel (its sender is in `senders` already), or null. */
  private build(name: string, channel: Config['channels'][string]): Source | null {
    const deps = this.deps
    if (!channel.enabled) return null
    if (channel.type === 'webhook') {
      return new WebhookSource(name, channel, {
        accept: (message, alongside) => deps.intake.acceptAll([message], 'webhook', alongside)[0]!,
        events: deps.webhookEvents,
        log: deps.log.withTag(name),
      })
    }
    const sender = deps.senders.telegram(name)
    if (!sender) throw new Error(`no Telegram sender for channel "${name}"`)
    const offsetKey = `telegram:${name}:offset`
    return new TelegramSource(name, channel, {
      sender,
      log: deps.log.withTag(name),
      pairing: deps.pairing,
      storedOffset: () => {
        const stored = deps.state.get(offsetKey)
        return stored === null ? null : Number(stored)
      },
      acceptUpdates: (messages, nextOffset) => void deps.intake.acceptAll(messages, 'telegram', () => deps.state.set(offsetKey, String(nextOffset))),
      ...(deps.backoff ? { backoff: deps.backoff } : {}),
    })
  }

  /**
   * A reloaded config: each changed channel is restarted on its own — its old source stopped (a Telegram poll
   * ends; what it received is in the queue already, with its offset, so the new source goes on from there), its
   * sender made anew, its new source started — a removed one only stopped, an added one only started. Unchanged
   * channels are not touched. Replies under way keep the sender they took (see MessageWorker) and finish.
   */
  async reconfigure(config: Config['channels'], changed: readonly string[]) {
    this.config = config
    for (const name of changed) {
      const old = this.sources.get(name)
      this.sources.delete(name)
      if (old) await old.stop().catch((error) => this.log.warn('channel did not stop cleanly', { channel: name, err: error }))
    }
    this.deps.senders.reconfigure(config, changed)
    // A stop that came while the old sources were stopping wins: nothing new may start after it.
    if (this.stopped) return
    for (const name of changed) {
      const channel = Object.hasOwn(config, name) ? config[name] : undefined
      const source = channel ? this.build(name, channel) : null
      if (!source) {
        this.log.info(channel ? 'channel disabled' : 'channel removed', { channel: name })
        continue
      }
      this.sources.set(name, source)
      this.startOne(source)
    }
  }

  /**
   * The source behind POST /api/webhook/<name>: an enabled webhook channel, or Telegram in webhook mode; else
   * undefined (that route is public: it answers every other name with one and the same 404).
   */
  webhookReceiver(name: string): WebhookReceiver | undefined {
    const source = this.sources.get(name)
    const config = source ? this.config[name] : undefined
    if (source?.receive && config && (config.type === 'webhook' || config.mode === 'webhook')) return source as WebhookReceiver
    return undefined
  }

  /**
   * Starts every source in the background; a source keeps itself connected from then on, and its progress is
   * logged by it and reported by `report()`. Nothing is thrown.
   */
  startAll() {
    this.stopped = false
    for (const source of this.sources.values()) this.startOne(source)
  }

  private startOne(source: Source) {
    source.start().then(
      () => this.log.info('channel started', { channel: source.name, type: source.type }),
      (error) => this.log.error('channel could not start', { channel: source.name, type: source.type, err: error }),
    )
  }

  async stopAll() {
    this.stopped = true
    await Promise.all([...this.sources.values()].map((source) => source.stop().catch((error) => this.log.warn('channel did not stop cleanly', { channel: source.name, err: error }))))
  }

  /** Every configured channel's state at `now` (epoch ms). */
  report(now = Date.now()): Record<string, ChannelReport> {
    const out: Record<string, ChannelReport> = {}
    for (const [name, channel] of Object.entries(this.config)) {
      const live = this.sources.get(name)
      out[name] = live ? reportOf(live.type, live.state(), now) : { type: channel.type, state: 'disabled' }
    }
    return out
  }
}
