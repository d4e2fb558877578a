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

/** What the channel manager needs of a channel. */
export interface Channel {
  readonly name: string
  readonly type: 'telegram' | 'webhook'
  /** Starts the channel; one with a connection keeps it up from then on (./supervisor.ts), shown by `state()`. */
  start(): Promise<void>
  /** Stops it at once, also in the middle of a wait before a reconnect. */
  stop(): Promise<void>
  /** Delivers text to a chat (retrying what is worth retrying); resolves to the channel's own message id. */
  send(chatId: string, text: string, inReplyTo?: string): Promise<string>
  /** Handles POST /api/webhook/<name>: `raw` is the exact body, for signature checks. */
  receive?(request: Request, raw: string, body: unknown): Promise<{ status: number; body: unknown }>
  state(): ChannelState
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
