import type { Agent } from '../agent/agent'
import type { Sender } from '../channels/channel'
import type { Logger } from '../logging/logger'
import { retryDelay, RETRY_POLICY, RetryTimer, storageFaultOf, systemClock, type Clock, type RetryPolicy } from '../storage/faults'
import { serialByKey } from '../util/serial'
import { waitUntil } from '../util/timeout'
import type { InboundQueue } from './queue'
import { FINAL } from './records'

type Outcome = { state: 'delivered'; delivered_id: string } | { state: 'failed'; error: string }

/**
 * Answers what the queue stored (SPEC §6, §8): each message by the agent in the chat's session, one at a time
 * per chat, and the reply delivered through the channel's sender.
 *
 * Crash safety: the reply is stored in the same transaction as the turn's history; a message is marked
 * "delivering" just before it is handed to the sender. At start (`recover`), queued messages and turns that did
 * not finish are processed again, stored replies are delivered, and a message caught while delivering is marked
 * failed rather than sent again — a reply is delivered at most once.
 *
 * Transient storage faults (full disk, a held lock, an I/O error) do not leave a message stuck until the next
 * start: one that hit such a fault before it was handed to the sender is tried again after 1 s, 2 s, 4 s, …
 * (RETRY_POLICY), its chat's later messages waiting behind it so their order holds, and after the last attempt
 * it is marked failed with the reason. An outcome (delivered, failed) that could not be written is written
 * again later in the same way, until it is: what was handed to the sender is never sent again. The timers
 * are armed only while something waits, and stopping cancels them; the next start resumes what was left.
 */
export class MessageWorker {
  /** each chat's messages, one at a time in the order they were stored */
  private readonly chats = serialByKey()
  /** messages in a chat's chain, so that none is processed twice at once */
  private readonly scheduled = new Set<string>()
  /** chats held back after a storage fault: the message to retry first, then those that arrived behind it */
  private readonly held = new Map<string, string[]>()
  /** storage faults each message has hit so far */
  private readonly faults = new Map<string, number>()
  /** outcomes that storage refused, with how often; written again until they are stored */
  private readonly unwritten = new Map<string, { outcome: Outcome; attempts: number }>()
  private readonly chatRetries: RetryTimer<string>
  private readonly outcomeRetries: RetryTimer<string>
  private readonly policy: RetryPolicy
  private readonly queue: InboundQueue
  private active = 0
  private stopping = false
  /** the "typing…" indicators of the turns under way, each removed when it stops */
  private readonly typing = new Set<() => void>()
  private readonly log: Logger

  constructor(
    private readonly deps: {
      queue: InboundQueue
      agent: Pick<Agent, 'turn'>
      /** the sender of an enabled channel, or undefined */
      sender: (channel: string) => Sender | undefined
      log: Logger
      /** when retries are due (default: the system clock) */
      clock?: Clock
      /** how often and how soon work that hit a storage fault is tried again (default RETRY_POLICY) */
      retry?: RetryPolicy
    },
  ) {
    this.queue = deps.queue
    this.log = deps.log.withTag('inbound')
    this.policy = deps.retry ?? RETRY_POLICY
    this.chatRetries = new RetryTimer((chat) => this.release(chat), deps.clock ?? systemClock)
    this.outcomeRetries = new RetryTimer((id) => this.rewrite(id), deps.clock ?? systemClock)
    this.queue.onAccepted((accepted) => {
      for (const { id, chat } of accepted) this.schedule(id, chat)
    })
  }

  /** After a start: settle what a crash interrupted, then schedule everything pending in arrival order. */
  recover() {
    const interrupted = this.queue.failInterruptedDeliveries()
    if (interrupted) this.log.warn('replies interrupted while being delivered were marked failed', { count: interrupted })
    const pending = this.queue.pending()
    if (pending.length) this.log.info('resuming stored messages', { count: pending.length })
    for (const { id, channel, chat_id } of pending) this.schedule(id, `${channel}:${chat_id}`)
  }

  /**
   * No new work starts; what is running finishes (the graceful stop waits with `idle`). Pending retries are
   * dropped, not waited for: their messages are still stored as queued or processing, and the next start
   * resumes them (an outcome not yet written leaves its message "delivering", which that start marks failed).
   */
  stop() {
    this.stopping = true
    // A stopping worker hands no reply over (the next start does): "typing…" would promise what it will not send,
    // and go on as long as a turn that outlives the drain (in a gateway restarted in its process, for minutes).
    for (const stopTyping of this.typing) stopTyping()
    this.chatRetries.stop()
    this.outcomeRetries.stop()
  }

  /** How many messages wait for a retry after a storage fault, and how many outcomes wait to be written. */
  retrying(): { messages: number; outcomes: number } {
    let messages = 0
    for (const ids of this.held.values()) messages += ids.length
    return { messages, outcomes: this.unwritten.size }
  }

  idle(timeoutMs: number): Promise<boolean> {
    return waitUntil(() => this.active === 0, timeoutMs)
  }

  /** Messages of one chat are processed one after another, in the order they were stored. */
  private schedule(id: string, chat: string) {
    if (this.scheduled.has(id)) return
    this.scheduled.add(id)
    void this.chats.run(chat, () => this.process(id, chat))
  }

  private async process(id: string, chat: string) {
    try {
      if (this.stopping) return
      // Behind a message that waits for its retry, a chat's later messages wait too: their order holds.
      const held = this.held.get(chat)
      if (held) {
        if (!held.includes(id)) held.push(id)
        return
      }
      await this.attempt(id, chat)
    } finally {
      this.scheduled.delete(id)
    }
  }

  private async attempt(id: string, chat: string) {
    this.active++
    let handedOver = false
    let stopTyping: (() => void) | undefined
    try {
      let row = this.queue.row(id)
      // A message found "delivering" was handed to its sender already; only its outcome is still to be written.
      if (!row || FINAL.has(row.state) || row.state === 'delivering') return
      const sender = this.deps.sender(row.channel)
      if (!sender) {
        await this.settle(id, { state: 'failed', error: `channel "${row.channel}" is not configured or not enabled any more` })
        return
      }
      if (row.reply === null) {
        await this.queue.setState(id, 'processing')
        // The chat sees that a reply is on its way ("typing…") until it is handed over or the turn fails.
        stopTyping = this.stopping ? undefined : this.showTyping(sender, row.chat_id)
        try {
          await this.deps.agent.turn({
            session: `${row.channel}:${row.chat_id}`,
            message: row.content,
            channel: row.channel,
            chatId: row.chat_id,
            onStored: (reply) => this.queue.storeReply(id, reply),
          })
        } catch (error) {
          if (storageFaultOf(error)) throw error
          await this.settle(id, { state: 'failed', error: (error as Error).message })
          return
        }
        row = this.queue.row(id)!
      }
      stopTyping?.()
      if (this.stopping) return
      await this.queue.setState(id, 'delivering')
      // From here on the reply may reach the chat: whatever happens, it is not sent again.
      handedOver = true
      this.faults.delete(id)
      let outcome: Outcome
      try {
        outcome = { state: 'delivered', delivered_id: await sender.send(row.chat_id, row.reply ?? '', id) }
      } catch (error) {
        this.log.error('delivery failed', { id, channel: row.channel, chatId: row.chat_id, err: error })
        outcome = { state: 'failed', error: `delivery failed: ${(error as Error).message}` }
      }
      await this.settle(id, outcome)
    } catch (error) {
      const code = storageFaultOf(error)
      if (code && !handedOver) await this.retryLater(id, chat, code, error as Error)
      else this.log.error('processing a message failed', { id, err: error })
    } finally {
      stopTyping?.()
      this.active--
    }
  }

  /** Starts "typing…" in the chat (where the channel has it); the function returned stops it, once or again. */
  private showTyping(sender: Sender, chatId: string): (() => void) | undefined {
    const stop = sender.showTyping?.(chatId)
    if (!stop) return undefined
    const stopTyping = () => {
      this.typing.delete(stopTyping)
      stop()
    }
    this.typing.add(stopTyping)
    return stopTyping
  }

  /** A storage fault before the reply was handed over: the chat waits, then this message is tried again — or, after the last attempt, fails. */
  private async retryLater(id: string, chat: string, code: string, error: Error) {
    const attempt = (this.faults.get(id) ?? 0) + 1
    if (attempt >= this.policy.attempts) {
      this.faults.delete(id)
      this.log.error('giving up on a message: the database could not be written', { id, code, attempts: attempt, reason: error.message })
      await this.settle(id, { state: 'failed', error: `not answered: the database could not be written in ${attempt} attempts (${code}: ${error.message}); nothing was sent to the chat, send the message again` })
      return
    }
    this.faults.set(id, attempt)
    this.held.set(chat, [id])
    const delay = retryDelay(attempt, this.policy)
    this.log.warn('storage fault while processing a message; it will be tried again', { id, code, attempt, of: this.policy.attempts, retryInMs: delay, reason: error.message })
    this.chatRetries.after(chat, delay)
  }

  /** A held chat's retry is due: its messages go back into its chain, the one that hit the fault first. */
  private release(chat: string) {
    const ids = this.held.get(chat) ?? []
    this.held.delete(chat)
    for (const id of ids) this.schedule(id, chat)
  }

  /** Records how a message ended; when storage refuses, the outcome is kept and written again later. */
  private async settle(id: string, outcome: Outcome) {
    this.faults.delete(id)
    try {
      if (outcome.state === 'delivered') await this.queue.setState(id, 'delivered', { delivered_id: outcome.delivered_id })
      else await this.queue.setState(id, 'failed', { error: outcome.error })
      this.unwritten.delete(id)
    } catch (error) {
      const code = storageFaultOf(error)
      if (!code) {
        this.unwritten.delete(id)
        this.log.error('could not record how a message ended', { id, state: outcome.state, err: error })
        return
      }
      const entry = this.unwritten.get(id) ?? { outcome, attempts: 0 }
      entry.attempts++
      this.unwritten.set(id, entry)
      // No last attempt here: the outcome is known, and writing it is the only way to tell the client.
      const delay = retryDelay(entry.attempts, this.policy)
      this.log.warn('how a message ended could not be written; writing it again later', { id, state: outcome.state, code, retryInMs: delay })
      this.outcomeRetries.after(id, delay)
    }
  }

  private rewrite(id: string) {
    const entry = this.unwritten.get(id)
    if (!entry) return
    // Counted as work in progress: a stop waits for the write (idle()) before the database closes.
    this.active++
    void this.settle(id, entry.outcome).finally(() => this.active--)
  }
}
