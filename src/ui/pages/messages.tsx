import { useState } from 'preact/hooks'
import { api } from '../api'
import { Badge, ErrorNote, formatTime, usePoll } from '../util'

interface QueuedMessage {
  id: string
  channel: string
  chat_id: string
  state: 'queued' | 'processing' | 'delivered' | 'failed'
  content: string
  reply?: string | null
  error?: string | null
  created_at: string
  updated_at: string
}

const STATES = ['queued', 'processing', 'delivered', 'failed'] as const

export function MessagesPage() {
  const [messages, setMessages] = useState<QueuedMessage[] | null>(null)
  const [state, setState] = useState('')
  const [channel, setChannel] = useState('')
  const [error, setError] = useState<unknown>(null)

  usePoll(
    async (current) => {
      const query = new URLSearchParams({ limit: '50' })
      if (state) query.set('state', state)
      if (channel.trim()) query.set('channel', channel.trim())
      try {
        const body = await api<{ messages: QueuedMessage[] }>(`/api/messages?${query}`)
        if (!current()) return
        setMessages(body.messages)
        setError(null)
      } catch (e) {
        if (current()) setError(e)
      }
    },
    2000,
    [state, channel],
  )

  return (
    <section aria-labelledby="messages-title">
      <div class="page-head">
        <h1 id="messages-title">Messages</h1>
        <span class="muted small">live · every 2 s</span>
      </div>
      <div class="toolbar">
        <label for="msg-state">State</label>
        <select id="msg-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">all</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <label for="msg-channel">Channel</label>
        <input id="msg-channel" type="search" placeholder="any" value={channel} onInput={(e) => setChannel(e.currentTarget.value)} />
      </div>
      <ErrorNote error={error} />
      {messages?.length === 0 && <p class="muted">No messages yet.</p>}
      <ul class="cards">
        {(messages ?? []).map((m) => (
          <li class="card" key={m.id} data-id={m.id} data-state={m.state}>
            <div class="row">
              <Badge kind={m.state}>{m.state}</Badge>
              <code class="small">{m.id}</code>
              <span class="muted small grow">
                {m.channel} · {m.chat_id}
              </span>
              <span class="muted small">{formatTime(m.updated_at)}</span>
            </div>
            <p class="text">{m.content}</p>
            {m.reply && (
              <p class="text reply">
                <span class="muted">↳ </span>
                {m.reply}
              </p>
            )}
            {m.error && (
              <p class="error">
                <strong>Error: </strong>
                {m.error}
              </p>
            )}
          </li>
        ))}
      </ul>
    </section>
  )
}
