import type { WebhookChannel as WebhookConfig } from '../../config/schema'
import type { Logger } from '../../logging/logger'
import type { WebhookEventLog } from '../../storage/webhook-events'
import { describeIssues } from '../../validation'
import type { ChannelState, InboundRequest, Incoming, Received, Source } from '../channel'
import { checkSignature, eventIdOf, WebhookEvent } from './signature'

export interface WebhookSourceDeps {
  /** Stores one message, running `alongside` in the same transaction; returns its id. */
  accept: (message: Incoming, alongside: () => void) => string
  /** event ids and signatures accepted recently */
  events: WebhookEventLog
  log: Logger
  /** epoch ms (default Date.now) */
  now?: () => number
}

/**
 * The webhook channel's inbound half (SPEC §8): events come in at POST /api/webhook/<name>, signed with the
 * channel's secret over a timestamp and the body.
 *
 * Replays: a request is accepted only within ±300 s of its timestamp, and its event id and signature are
 * remembered for 10 minutes (in the same transaction as its message), so the same event — resent by its
 * sender or replayed by someone who captured it — gives one turn.
 */
export class WebhookSource implements Source {
  readonly type = 'webhook' as const
  private current: ChannelState = { state: 'stopped' }
  private readonly now: () => number

  constructor(
    readonly name: string,
    private readonly config: WebhookConfig,
    private readonly deps: WebhookSourceDeps,
  ) {
    this.now = deps.now ?? Date.now
  }

  async start() {
    this.current = { state: 'running' }
  }

  async stop() {
    this.current = { state: 'stopped' }
  }

  state() {
    return this.current
  }

  async receive({ headers, raw, body }: InboundRequest): Promise<Received> {
    const nowMs = this.now()
    const signature = checkSignature(this.config.secret, headers, raw, nowMs)
    if (!signature.ok) return { kind: 'refused', reason: 'unauthorized', message: signature.problem }
    const event = eventIdOf(headers)
    if ('problem' in event) return { kind: 'refused', reason: 'invalid', message: event.problem }
    const parsed = WebhookEvent.safeParse(body, { reportInput: true })
    if (!parsed.success) return { kind: 'refused', reason: 'invalid', message: describeIssues(parsed.error.issues, [], { input: body, noun: 'field' }).join('; ') }
    // The signature is remembered even when the sender names the event: the event id is not signed, so a
    // captured request replayed under a new id is still the same request.
    const keys = event.id === null ? [`sig:${signature.digest}`] : [`id:${event.id}`, `sig:${signature.digest}`]
    if (this.deps.events.seen(this.name, keys, nowMs)) {
      this.deps.log.info('webhook event already accepted; ignored', { channel: this.name, ...(event.id === null ? {} : { eventId: event.id }) })
      return { kind: 'duplicate' }
    }
    const { chat_id, content, sender } = parsed.data.data
    // Nothing is awaited between the check above and this transaction, so no other request can slip in between.
    const id = this.deps.accept({ channel: this.name, chatId: String(chat_id), content, sender: sender ?? null }, () => this.deps.events.record(this.name, keys, nowMs))
    return { kind: 'accepted', messageId: id }
  }
}
