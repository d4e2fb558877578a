/** A message a channel received from a chat, before it is stored. */
export interface Incoming {
  channel: string
  chatId: string
  content: string
  sender?: string | null
  /** the channel's own id of the event (Telegram update id, …): the same event is never stored twice */
  externalId?: string | null
}

/**
 * Where a channel is: `starting` (first attempt), `running`, `retrying` (the connection failed for `error`; the
 * next attempt is at `nextRetryAt`, epoch ms, after `failures` failures in a row), `failed` (for good, until a
 * restart: `error` says why), `stopped`.
 */
export type ChannelState =
  | { state: 'starting' | 'running' | 'stopped' }
  | { state: 'retrying'; error: string; nextRetryAt: number; failures: number }
  | { state: 'failed'; error: string }

export type ChannelType = 'telegram' | 'webhook'

/**
 * The outbound half of a channel, built first from its config: the agent's send_message tool, the message
 * worker, cron and the pairing notice all deliver through it.
 */
export interface Sender {
  readonly name: string
  readonly type: ChannelType
  /** Delivers text to a chat (retrying what is worth retrying); resolves to the channel's own message id. */
  send(chatId: string, text: string, inReplyTo?: string): Promise<string>
  /**
   * Shows that a reply is being written ("typing…" on Telegram) until the returned function is called; channels
   * without such a thing leave it out. Best effort: it never throws and never delays the caller.
   */
  showTyping?(chatId: string): () => void
}

/**
 * Where a source hands what it received: the durable inbound queue (src/messages/queue.ts) implements it.
 * Stores the messages (and runs `alongside`, e.g. a Telegram offset) in one transaction; returns their ids.
 */
export interface Intake {
  acceptAll(messages: Incoming[], source: string, alongside?: () => void): string[]
}

/** The headers, exact body (for signatures) and parsed body of a request a channel's sender made to us. */
export interface InboundRequest {
  headers: Headers
  raw: string
  body: unknown
}

/**
 * What a source did with an inbound request: stored it (with the message's id, when it held one), recognised it
 * as one it had already, or refused it — `unauthorized` (a signature or secret), `invalid` (the body), or
 * `not-found` (this channel takes no such requests). The route turns this into HTTP.
 */
export type Received =
  | { kind: 'accepted'; messageId?: string }
  | { kind: 'duplicate' }
  | { kind: 'refused'; reason: 'unauthorized' | 'invalid' | 'not-found'; message: string }

/** The inbound half of a channel, handed the queue: it runs (polling, supervised) or waits to be called. */
export interface Source {
  readonly name: string
  readonly type: ChannelType
  /** Starts the source; one with a connection keeps it up from then on (./supervisor.ts), shown by `state()`. */
  start(): Promise<void>
  /** Stops it at once, also in the middle of a wait before a reconnect. */
  stop(): Promise<void>
  state(): ChannelState
  /** Takes one inbound request (POST /api/webhook/<name>), for sources that receive them. */
  receive?(request: InboundRequest): Promise<Received>
}

/** Thrown by a delivery that will not succeed by trying again (4xx, bad chat, …). */
export class PermanentError extends Error {}

export interface RetryOptions {
  attempts: number
  /** first delay; doubles each time */
  baseDelayMs: number
  maxDelayMs: number
  /** a delay the other side asked for (Telegram's retry_after), if any */
  delayFor?: (error: unknown) => number | null
  signal?: AbortSignal
}

/** Runs `task` until it succeeds, a PermanentError is thrown, or the attempts run out. */
export async function withRetries<T>(task: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  let delay = options.baseDelayMs
  for (let attempt = 1; ; attempt++) {
    try {
      return await task(attempt)
    } catch (error) {
      if (error instanceof PermanentError || attempt >= options.attempts || options.signal?.aborted) throw error
      const asked = options.delayFor?.(error)
      await Bun.sleep(asked ?? delay)
      delay = Math.min(delay * 2, options.maxDelayMs)
    }
  }
}
