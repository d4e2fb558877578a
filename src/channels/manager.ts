import type { Config } from '../config/schema'
import { AppError } from '../errors'
import type { Logger } from '../logging/logger'
import { StateStore } from '../storage/db'
import type { WebhookEventLog } from '../storage/webhook-events'
import type { Channel, ChannelState, Incoming } from './channel'
import type { PairingStore } from './pairing'
import type { Backoff } from './supervisor'
import { TelegramChannel } from './telegram'
import { WebhookChannel } from './webhook'

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

/**
 * Starts the enabled channels, reports their state, stops them — and keeps one channel's failure from
 * touching the gateway or the others: each channel supervises its own connection (retrying with backoff, see
 * ./supervisor.ts), and one that fails for good is logged, reported as failed, and left.
 */
export class ChannelManager {
  private readonly channels = new Map<string, Channel>()
  private readonly log: Logger

  constructor(
    private readonly config: Config['channels'],
    deps: {
      accept: (message: Incoming, source: string) => string
      acceptAll: (messages: Incoming[], source: string, alongside?: () => void) => string[]
      state: StateStore
      /** approved chat senders and pending pairing codes */
      pairing: PairingStore
      /** event ids and signatures of webhook events accepted recently (replay protection) */
      webhookEvents: WebhookEventLog
      log: Logger
      telegramPollTimeoutSeconds?: number
      /** reconnect waits of the channels (default 1 s doubling to 60 s, ±20 %); tests shorten them */
      backoff?: Backoff
    },
  ) {
    this.log = deps.log.withTag('channels')
    for (const [name, channel] of Object.entries(config)) {
      if (!channel.enabled) continue
      if (channel.type === 'telegram') {
        const offsetKey = `telegram:${name}:offset`
        this.channels.set(
          name,
          new TelegramChannel(name, channel, {
            log: deps.log.withTag(name),
            pairing: deps.pairing,
            storedOffset: () => {
              const stored = deps.state.get(offsetKey)
              return stored === null ? null : Number(stored)
            },
            acceptUpdates: (messages, nextOffset) => deps.acceptAll(messages, 'telegram', () => deps.state.set(offsetKey, String(nextOffset))),
            ...(deps.telegramPollTimeoutSeconds ? { pollTimeoutSeconds: deps.telegramPollTimeoutSeconds } : {}),
            ...(deps.backoff ? { backoff: deps.backoff } : {}),
          }),
        )
      } else {
        this.channels.set(
          name,
          new WebhookChannel(name, channel, {
            accept: (message, alongside) => deps.acceptAll([message], 'webhook', alongside)[0]!,
            events: deps.webhookEvents,
            log: deps.log.withTag(name),
          }),
        )
      }
    }
  }

  /** An enabled channel, or undefined. */
  find(name: string): Channel | undefined {
    return this.channels.get(name)
  }

  /** An enabled channel, or 404 CHANNEL_NOT_FOUND that says which exist. */
  get(name: string): Channel {
    const channel = this.channels.get(name)
    if (channel) return channel
    const configured = Object.hasOwn(this.config, name) ? this.config[name] : undefined
    if (configured) throw new AppError('CHANNEL_NOT_FOUND', `channel "${name}" is disabled (channels.${name}.enabled)`)
    const names = [...this.channels.keys()]
    throw new AppError('CHANNEL_NOT_FOUND', `no channel "${name}"${names.length ? `; enabled channels: ${names.join(', ')}` : '; no channel is enabled'}`)
  }

  /**
   * The channel behind POST /api/webhook/<name>: an enabled webhook channel, or Telegram in webhook mode. That
   * route is public, so everything else — unknown, disabled, polling — gets one and the same 404 that names no
   * channel: a stranger learns nothing about which channels are configured.
   */
  webhookReceiver(name: string): Channel & Required<Pick<Channel, 'receive'>> {
    const channel = this.channels.get(name)
    const config = channel ? this.config[name] : undefined
    if (channel?.receive && config && (config.type === 'webhook' || config.mode === 'webhook')) return channel as Channel & Required<Pick<Channel, 'receive'>>
    throw new AppError('CHANNEL_NOT_FOUND', 'no channel takes webhook requests at this path')
  }

  /**
   * Starts every channel in the background; a channel keeps itself connected from then on, and its progress is
   * logged by it and reported by `report()`. Nothing is thrown.
   */
  startAll() {
    for (const channel of this.channels.values()) {
      channel.start().then(
        () => this.log.info('channel started', { channel: channel.name, type: channel.type }),
        (error) => this.log.error('channel could not start', { channel: channel.name, type: channel.type, err: error }),
      )
    }
  }

  async stopAll() {
    await Promise.all([...this.channels.values()].map((channel) => channel.stop().catch((error) => this.log.warn('channel did not stop cleanly', { channel: channel.name, err: error }))))
  }

  /** Every configured channel's state at `now` (epoch ms). */
  report(now = Date.now()): Record<string, ChannelReport> {
    const out: Record<string, ChannelReport> = {}
    for (const [name, channel] of Object.entries(this.config)) {
      const live = this.channels.get(name)
      out[name] = live ? reportOf(live.type, live.state(), now) : { type: channel.type, state: 'disabled' }
    }
    return out
  }
}
