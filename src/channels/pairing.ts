import type { Database } from 'bun:sqlite'
import { z } from 'zod'
import { AppError } from '../errors'

/** No 0/O or 1/I, so a code read from a phone is typed right; 32 symbols, so 5 bits of a random byte pick one without bias. */
export const PAIRING_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'
export const PAIRING_CODE_LENGTH = 8
export const PAIRING_TTL_MS = 60 * 60 * 1000
/** Pending requests kept per channel: a flood of strangers cannot fill the database. */
export const MAX_PENDING_PER_CHANNEL = 100

const stamp = z.string()

export const PairingRequest = z.object({
  code: z.string(),
  channel: z.string(),
  sender_id: z.string(),
  username: z.string().nullable(),
  chat_id: z.string(),
  created_at: stamp,
  expires_at: stamp,
})
export type PairingRequest = z.infer<typeof PairingRequest>

export const PairingApproval = z.object({
  channel: z.string(),
  sender_id: z.string(),
  username: z.string().nullable(),
  approved_at: stamp,
})
export type PairingApproval = z.infer<typeof PairingApproval>

/** What `request` did: a new code to send, or why nothing is sent. */
export type PairingOutcome = { status: 'created'; request: PairingRequest } | { status: 'pending' } | { status: 'full' }

/** `abcd efgh`, `ABCD-EFGH`, `abcdefgh` → `ABCD-EFGH`; anything else stays as typed (and matches nothing). */
export function normaliseCode(code: string): string {
  const bare = code.replace(/[\s-]/g, '').toUpperCase()
  return bare.length === PAIRING_CODE_LENGTH ? `${bare.slice(0, 4)}-${bare.slice(4)}` : code.trim()
}

function randomCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(PAIRING_CODE_LENGTH))
  const letters = [...bytes].map((byte) => PAIRING_ALPHABET[byte & 31]).join('')
  return normaliseCode(letters)
}

/**
 * Chat senders waiting for access and those granted it (SPEC §8, dmPolicy "pairing"), over the tables of
 * migration 5. An unknown sender gets one code; the owner approves it (CLI or API), which moves the sender to
 * the approvals. The gateway and the CLI share the database, so an approval from either applies to the next
 * message without telling the other.
 */
export class PairingStore {
  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
    private readonly options: { ttlMs?: number; maxPending?: number; newCode?: () => string } = {},
  ) {}

  private iso(ms = this.now()) {
    return new Date(ms).toISOString()
  }

  /**
   * A new code for a sender without access, or why there is none: the sender already holds an unexpired
   * code (one reply per code, no reminders), or the channel has `maxPending` requests waiting.
   */
  request(input: { channel: string; senderId: string; username?: string | null; chatId: string }): PairingOutcome {
    const ttl = this.options.ttlMs ?? PAIRING_TTL_MS
    const max = this.options.maxPending ?? MAX_PENDING_PER_CHANNEL
    const newCode = this.options.newCode ?? randomCode
    return this.db
      .transaction((): PairingOutcome => {
        const nowMs = this.now()
        const now = this.iso(nowMs)
        this.db.query('DELETE FROM pairing_requests WHERE expires_at <= $now').run({ now })
        if (this.db.query('SELECT 1 FROM pairing_requests WHERE channel = $channel AND sender_id = $sender').get({ channel: input.channel, sender: input.senderId })) {
          return { status: 'pending' }
        }
        const { n } = z.object({ n: z.int() }).parse(this.db.query('SELECT COUNT(*) AS n FROM pairing_requests WHERE channel = $channel').get({ channel: input.channel }))
        if (n >= max) return { status: 'full' }
        const insert = this.db.query(
          `INSERT INTO pairing_requests (channel, sender_id, code, username, chat_id, created_at, expires_at)
           VALUES ($channel, $sender_id, $code, $username, $chat_id, $created_at, $expires_at) ON CONFLICT (code) DO NOTHING`,
        )
        const row = { channel: input.channel, sender_id: input.senderId, username: input.username ?? null, chat_id: input.chatId, created_at: now, expires_at: this.iso(nowMs + ttl) }
        // 32^8 codes: a collision is rare; a few more draws settle it.
        for (let attempt = 0; attempt < 5; attempt++) {
          const code = newCode()
          if (insert.run({ ...row, code }).changes > 0) return { status: 'created', request: { code, ...row } }
        }
        throw new Error('could not draw an unused pairing code')
      })
      .immediate()
  }

  /** Requests that have not expired, oldest first. */
  pending(): PairingRequest[] {
    const rows = this.db
      .query('SELECT code, channel, sender_id, username, chat_id, created_at, expires_at FROM pairing_requests WHERE expires_at > $now ORDER BY created_at, code')
      .all({ now: this.iso() })
    return z.array(PairingRequest).parse(rows)
  }

  approved(): PairingApproval[] {
    const rows = this.db.query('SELECT channel, sender_id, username, approved_at FROM pairing_approvals ORDER BY approved_at, channel, sender_id').all()
    return z.array(PairingApproval).parse(rows)
  }

  /** Grants the sender of a pending code access; an unknown or expired code is a NOT_FOUND that says which. */
  approve(code: string): { approval: PairingApproval; request: PairingRequest } {
    const wanted = normaliseCode(code)
    return this.db
      .transaction(() => {
        const found = this.db
          .query('SELECT code, channel, sender_id, username, chat_id, created_at, expires_at FROM pairing_requests WHERE code = $code')
          .get({ code: wanted })
        if (!found) throw new AppError('NOT_FOUND', `no pending pairing request has the code ${wanted}; see the pending ones with: xopcbot pairing list`)
        const request = PairingRequest.parse(found)
        if (Date.parse(request.expires_at) <= this.now()) {
          throw new AppError('NOT_FOUND', `the pairing code ${wanted} expired at ${request.expires_at}; the sender gets a new code by writing to the bot again`)
        }
        this.db.query('DELETE FROM pairing_requests WHERE code = $code').run({ code: wanted })
        const approval: PairingApproval = { channel: request.channel, sender_id: request.sender_id, username: request.username, approved_at: this.iso() }
        this.db
          .query(
            `INSERT INTO pairing_approvals (channel, sender_id, username, approved_at) VALUES ($channel, $sender_id, $username, $approved_at)
             ON CONFLICT (channel, sender_id) DO UPDATE SET username = excluded.username, approved_at = excluded.approved_at`,
          )
          .run(approval)
        return { approval, request }
      })
      .immediate()
  }

  /**
   * Takes access away from a sender, given by id or username ("@alice" only matches usernames), in one channel
   * or all; a pending request of theirs goes too. Nothing to revoke is a NOT_FOUND.
   */
  revoke(sender: string, channel?: string): PairingApproval[] {
    const byName = sender.startsWith('@')
    const name = sender.replace(/^@/, '').toLowerCase()
    const where = `(${byName ? '' : 'sender_id = $sender OR '}lower(username) = $name)${channel ? ' AND channel = $channel' : ''}`
    const params = { ...(byName ? {} : { sender }), name, ...(channel ? { channel } : {}) }
    return this.db
      .transaction(() => {
        const removed = z.array(PairingApproval).parse(this.db.query(`SELECT channel, sender_id, username, approved_at FROM pairing_approvals WHERE ${where}`).all(params))
        this.db.query(`DELETE FROM pairing_approvals WHERE ${where}`).run(params)
        this.db.query(`DELETE FROM pairing_requests WHERE ${where}`).run(params)
        if (removed.length === 0) throw new AppError('NOT_FOUND', `${sender} is not an approved sender${channel ? ` of channel "${channel}"` : ''}; see them with: xopcbot pairing list`)
        return removed
      })
      .immediate()
  }

  isApproved(channel: string, senderId: string): boolean {
    return this.db.query('SELECT 1 FROM pairing_approvals WHERE channel = $channel AND sender_id = $sender').get({ channel, sender: senderId }) !== null
  }
}
