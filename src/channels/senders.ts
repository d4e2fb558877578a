import type { Config } from '../config/schema'
import type { Logger } from '../logging/logger'
import type { Sender } from './channel'
import { TelegramSender } from './telegram/sender'
import { WebhookSender } from './webhook/sender'

/**
 * The outbound half of every enabled channel, built first from the config alone: whatever delivers — the
 * message worker, the send_message tool, cron, the pairing notice, POST /api/send — takes a sender from here.
 */
export class Senders {
  private readonly senders = new Map<string, Sender>()

  constructor(
    private readonly config: Config['channels'],
    deps: { log: Logger },
  ) {
    for (const [name, channel] of Object.entries(config)) {
      if (!channel.enabled) continue
      const sender =
        channel.type === 'telegram'
          ? new TelegramSender(name, channel)
          : new WebhookSender(name, channel, { log: deps.log.withTag(name) })
      this.senders.set(name, sender)
    }
  }

  /** The sender of an enabled channel, or undefined (then `whyMissing` says why). */
  find(name: string): Sender | undefined {
    return this.senders.get(name)
  }

  /** Why there is no sender by this name: the channel is disabled, or which channels are enabled. */
  whyMissing(name: string): string {
    const configured = Object.hasOwn(this.config, name) ? this.config[name] : undefined
    if (configured) return `channel "${name}" is disabled (channels.${name}.enabled)`
    const names = [...this.senders.keys()]
    return `no channel "${name}"${names.length ? `; enabled channels: ${names.join(', ')}` : '; no channel is enabled'}`
  }
}
