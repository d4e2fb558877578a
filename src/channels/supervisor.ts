import { z } from 'zod'
import type { Logger } from '../logging/logger'
import type { ChannelState } from './channel'

/** Time as the supervisor sees it: injected, so that its tests run on a fake clock. */
export interface Timer {
  /** epoch ms */
  now(): number
  /** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

export const systemTimer: Timer = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    }),
}

export interface Backoff {
  /** the wait after the first failure; it doubles with each failure in a row */
  initialMs: number
  /** the doubling stops here */
  maxMs: number
  /** ± this fraction of the wait, at random, so that many gateways do not retry in step */
  jitter: number
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 60_000, jitter: 0.2 }

/** The wait after the `failures`-th failure in a row: `initialMs` doubling up to `maxMs`, then ± `jitter`. */
export function backoffDelay(failures: number, backoff: Backoff, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(Math.max(failures, 1) - 1, 40))
  return Math.max(0, Math.round(base * (1 + backoff.jitter * (2 * random() - 1))))
}

const BackoffSetting = z
  .string()
  .regex(/^\d{1,7},\d{1,7}$/)
  .transform((value) => value.split(',').map(Number) as [number, number])
  .refine(([initialMs, maxMs]) => initialMs >= 1 && maxMs >= initialMs)

/**
 * XOPCBOT_TEST_CHANNEL_BACKOFF_MS="<initialMs>,<maxMs>" (test-only, like XOPCBOT_TEST_PLUGIN): end-to-end tests
 * shorten the reconnect waits with it, so that they run in real time without waiting a minute. Null when unset;
 * an error message when malformed.
 */
export function backoffFromEnv(value: string | undefined): Backoff | null | string {
  if (value === undefined || value === '') return null
  const parsed = BackoffSetting.safeParse(value)
  if (!parsed.success) return `XOPCBOT_TEST_CHANNEL_BACKOFF_MS must be "<initialMs>,<maxMs>" with 1 <= initialMs <= maxMs (got ${JSON.stringify(value)}); the default backoff applies`
  const [initialMs, maxMs] = parsed.data
  return { ...DEFAULT_BACKOFF, initialMs, maxMs }
}

/** What went wrong, as the supervisor needs to know it. */
export interface Fault {
  /** a sentence for the status and the log; it must hold no secret */
  reason: string
  /** retrying will not help (a rejected token, …): the channel is reported failed and left */
  permanent?: boolean
  /** the other side asked for this wait (Telegram's retry_after) */
  retryAfterMs?: number | null
}

/** What a session gets: the signal that ends it (stop), and `ready()` to call once it works end to end. */
export interface Session {
  signal: AbortSignal
  /** the connection works: the channel is running, and the next failure starts the backoff afresh */
  ready(): void
}

export interface SupervisorOptions {
  /** names the channel in log lines */
  channel: string
  log: Logger
  /** turns anything a session throws into a Fault */
  classify: (error: unknown) => Fault
  timer?: Timer
  backoff?: Backoff
  /** [0, 1), for the jitter (default Math.random) */
  random?: () => number
}

/**
 * Keeps a channel's connection up: runs `session` — connect, then serve until something fails — and when it
 * throws (or returns) before the channel is stopped, waits with capped exponential backoff and jitter and runs it
 * again, forever. A permanent fault (a rejected token) ends it in state `failed`. A success (`ready()`) resets
 * the backoff. `stop()` ends a backoff wait at once.
 *
 * One loop serves the first start and every later reconnect, so a gateway that starts before the network is
 * up behaves just like one that loses the network later.
 */
export class Supervisor {
  private current: ChannelState = { state: 'stopped' }
  private abort: AbortController | null = null
  private loop: Promise<void> | null = null
  private readonly timer: Timer
  private readonly backoff: Backoff
  private readonly random: () => number

  constructor(private readonly options: SupervisorOptions) {
    this.timer = options.timer ?? systemTimer
    this.backoff = options.backoff ?? DEFAULT_BACKOFF
    this.random = options.random ?? Math.random
  }

  state(): ChannelState {
    return this.current
  }

  /** Starts supervising `session` in the background; returns at once. A second start while running does nothing. */
  start(session: (session: Session) => Promise<void>) {
    if (this.loop) return
    const abort = new AbortController()
    this.abort = abort
    this.current = { state: 'starting' }
    this.loop = this.run(session, abort.signal)
  }

  /** Ends the session and any backoff wait; resolves once the session has ended (or after 3 s at most). */
  async stop() {
    const loop = this.loop
    this.abort?.abort()
    this.abort = null
    this.loop = null
    if (loop) {
      // Real time, whatever the clock: this only bounds how long a stop can take when a session ignores its signal.
      const grace = new AbortController()
      await Promise.race([loop, systemTimer.sleep(3000, grace.signal)])
      grace.abort()
    }
    this.current = { state: 'stopped' }
  }

  private async run(session: (session: Session) => Promise<void>, signal: AbortSignal) {
    const { log, channel } = this.options
    // A loop that was stopped never writes the state again: a later start owns it.
    const set = (state: ChannelState) => {
      if (!signal.aborted) this.current = state
    }
    let failures = 0
    const ready = () => {
      if (signal.aborted || this.current.state === 'running') return
      if (failures > 0) log.info('channel connected again', { channel, failures })
      else log.info('channel running', { channel })
      failures = 0
      set({ state: 'running' })
    }
    while (!signal.aborted) {
      let thrown: unknown
      try {
        await session({ signal, ready })
        if (signal.aborted) return
        thrown = new Error('the connection ended')
      } catch (error) {
        if (signal.aborted) return
        thrown = error
      }
      let fault: Fault
      try {
        fault = this.options.classify(thrown)
      } catch {
        fault = { reason: thrown instanceof Error ? thrown.message : String(thrown) }
      }
      if (fault.permanent) {
        set({ state: 'failed', error: fault.reason })
        log.error('channel failed; not retrying', { channel, reason: fault.reason })
        return
      }
      failures++
      const delayMs = fault.retryAfterMs ?? backoffDelay(failures, this.backoff, this.random)
      const nextRetryAt = this.timer.now() + delayMs
      set({ state: 'retrying', error: fault.reason, nextRetryAt, failures })
      log.warn('channel connection failed; retrying', { channel, failures, retryInMs: delayMs, reason: fault.reason })
      await this.timer.sleep(delayMs, signal)
    }
  }
}
