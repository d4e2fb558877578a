import type { Config } from '../config/schema'
import type { Logger } from '../logging/logger'
import type { DeliveryObserver } from '../metrics/recorder'
import type { Sender } from './channel'
import { TelegramSender } from './telegram/sender'
import { WebhookSender } from './webhook/sender'

/**
 * The outbound half of every enabled channel, built first from the config alone: whatever delivers — the
 * message worker, the send_message tool, cron, the pairing notice, POST /api/send — takes a sender from here.
 */
export class Senders {
  private readonly senders = new Map<string, Sender>()
  /** what `find` hands out: the same senders, each delivery counted (when there are metrics) */
  private readonly counted = new Map<string, Sender>()

  constructor(
    private config: Config['channels'],
    private readonly deps: { log: Logger; metrics?: DeliveryObserver; /** Telegram's typing renewal (tests only) */ typingRenewMs?: number },
  ) {
    for (const [name, channel] of Object.entries(config)) this.build(name, channel)
  }

  private build(name: string, channel: Config['channels'][string] | undefined) {
    this.senders.delete(name)
    this.counted.delete(name)
    if (!channel?.enabled) return
    const sender =
      channel.type === 'telegram'
        ? new TelegramSender(name, channel, { log: this.deps.log.withTag(name), ...(this.deps.typingRenewMs ? { typingRenewMs: this.deps.typingRenewMs } : {}) })
        : new WebhookSender(name, channel, { log: this.deps.log.withTag(name) })
    this.senders.set(name, sender)
    this.counted.set(name, this.deps.metrics ? countedSender(sender, this.deps.metrics) : sender)
  }

  /**
   * A reloaded config: the senders of the `changed` channels are made anew (or removed). A delivery under way
   * keeps the sender it took and finishes with it; the next one takes the new sender.
   */
  reconfigure(config: Config['channels'], changed: Iterable<string>) {
    this.config = config
    for (const name of changed) this.build(name, Object.hasOwn(config, name) ? config[name] : undefined)
  }

  /** The sender of an enabled channel, or undefined (then `whyMissing` says why). */
  find(name: string): Sender | undefined {
    return this.counted.get(name)
  }

  /** The Telegram sender itself: its inbound source shares its API client. Deliveries go through `find`. */
  telegram(name: string): TelegramSender | undefined {
    const sender = this.senders.get(name)
    return sender instanceof TelegramSender ? sender : undefined
  }

  /** Why there is no sender by this name: the channel is disabled, or which channels are enabled. */
  whyMissing(name: string): string {
    const configured = Object.hasOwn(this.config, name) ? this.config[name] : undefined
    if (configured) return `channel "${name}" is disabled (channels.${name}.enabled)`
    const names = [...this.senders.keys()]
    return `no channel "${name}"${names.length ? `; enabled channels: ${names.join(', ')}` : '; no channel is enabled'}`
  }
}

/** A sender whose deliveries (each with the sender's own retries) are counted by channel. */
function countedSender(sender: Sender, metrics: DeliveryObserver): Sender {
  return {
    name: sender.name,
    type: sender.type,
    async send(chatId, text, inReplyTo) {
      let id: string
      try {
        id = await sender.send(chatId, text, inReplyTo)
      } catch (error) {
        metrics.delivery(sender.name, false)
        throw error
      }
      metrics.delivery(sender.name, true)
      return id
    },
    ...(sender.showTyping ? { showTyping: (chatId: string) => sender.showTyping!(chatId) } : {}),
  }
}
