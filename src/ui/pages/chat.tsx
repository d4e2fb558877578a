import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError, stream, type SessionSummary } from '../api'
import { describeError, ErrorNote, formatTime, json } from '../util'

interface ToolCall {
  id: string
  name: string
  input: unknown
}
interface ToolResult {
  id: string
  name: string
  output: unknown
  error?: true
}
export interface StoredMessage {
  role: 'user' | 'assistant' | 'tool'
  content: string
  created_at: string
  model?: string
  tool_calls?: ToolCall[]
  tool_results?: ToolResult[]
}

/** The turn being streamed: what the user sent and the reply so far. */
interface Pending {
  user: string
  reply: string
  error: string | null
  done: boolean
}

const SESSION_KEY = /^[A-Za-z0-9_.:@-]{1,128}$/

/** The stored text of an assistant message that called tools repeats the calls as "[tool call …]" lines: those are shown as tool calls instead. */
const textWithoutToolLines = (content: string) =>
  content
    .split('\n')
    .filter((line) => !line.startsWith('[tool call '))
    .join('\n')
    .trim()

function ToolCalls({ calls }: { calls: ToolCall[] }) {
  return (
    <>
      {calls.map((call) => (
        <details class="tool" key={call.id}>
          <summary>
            Tool call <code>{call.name}</code>
          </summary>
          <pre>{json(call.input)}</pre>
        </details>
      ))}
    </>
  )
}

function ToolResults({ results }: { results: ToolResult[] }) {
  return (
    <>
      {results.map((result) => (
        <details class={`tool${result.error ? ' tool-error' : ''}`} key={result.id}>
          <summary>
            {result.error ? 'Tool failed' : 'Tool result'} <code>{result.name}</code>
          </summary>
          <pre>{json(result.output)}</pre>
        </details>
      ))}
    </>
  )
}

function Message({ message }: { message: StoredMessage }) {
  if (message.role === 'tool') {
    return (
      <li class="msg msg-tool">
        <ToolResults results={message.tool_results ?? []} />
      </li>
    )
  }
  const text = message.tool_calls?.length ? textWithoutToolLines(message.content) : message.content
  return (
    <li class={`msg msg-${message.role}`}>
      <span class="sr-only">{message.role === 'user' ? 'You:' : 'Assistant:'}</span>
      {text && <div class="bubble">{text}</div>}
      {message.tool_calls?.length ? <ToolCalls calls={message.tool_calls} /> : null}
      <span class="meta">
        {formatTime(message.created_at)}
        {message.model ? ` · ${message.model}` : ''}
      </span>
    </li>
  )
}

const newSessionKey = () => `ui-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}-${Math.random().toString(36).slice(2, 6)}`

export function ChatPage({ sessionKey }: { sessionKey: string }) {
  const [sessions, setSessions] = useState<SessionSummary[]>([])
  const [history, setHistory] = useState<StoredMessage[]>([])
  const [loadError, setLoadError] = useState<unknown>(null)
  const [pending, setPending] = useState<Pending | null>(null)
  const [draft, setDraft] = useState('')
  const abort = useRef<AbortController | null>(null)
  const scroller = useRef<HTMLDivElement>(null)
  const stick = useRef(true)
  const input = useRef<HTMLTextAreaElement>(null)

  const loadSessions = () =>
    api<{ sessions: SessionSummary[] }>('/api/sessions?limit=200')
      .then((body) => setSessions(body.sessions))
      .catch(() => {})

  const loadHistory = async (key: string) => {
    try {
      const body = await api<{ session: { messages: StoredMessage[] } }>(`/api/sessions/${encodeURIComponent(key)}`)
      setHistory(body.session.messages)
      setLoadError(null)
    } catch (error) {
      // A new session has no history until its first turn.
      if (error instanceof ApiError && error.code === 'SESSION_NOT_FOUND') setHistory([])
      else setLoadError(error)
    }
  }

  // A turn still streaming belongs to the session it was sent in: leaving that session stops it.
  const stopTurn = () => {
    abort.current?.abort()
    abort.current = null
  }

  useEffect(() => {
    stopTurn()
    setPending(null)
    setHistory([])
    stick.current = true
    void loadHistory(sessionKey)
    void loadSessions()
  }, [sessionKey])

  useEffect(() => stopTurn, [])

  // Follow the newest text while the reader is at the bottom; leave them where they are when they scrolled up.
  useLayoutEffect(() => {
    const el = scroller.current
    if (el && stick.current) el.scrollTop = el.scrollHeight
  }, [history, pending])

  const onScroll = () => {
    const el = scroller.current
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40
  }

  const sendMessage = async (event: Event) => {
    event.preventDefault()
    const message = draft.trim()
    if (!message || (pending && !pending.done)) return
    const controller = new AbortController()
    abort.current = controller
    // False once the page moved on to another session (or away): this turn no longer updates it.
    const current = () => abort.current === controller
    stick.current = true
    setDraft('')
    let reply = ''
    setPending({ user: message, reply, error: null, done: false })
    try {
      await stream('/api/agent', { method: 'POST', body: { message, session: sessionKey, stream: true }, signal: controller.signal }, ({ event: name, data }) => {
        if (!current()) return
        const payload = JSON.parse(data)
        if (name === 'delta') {
          reply += payload.text
          setPending({ user: message, reply, error: null, done: false })
        } else if (name === 'done') {
          reply = payload.reply
          setPending({ user: message, reply, error: null, done: true })
        } else if (name === 'error') {
          setPending({ user: message, reply, error: payload?.error?.message ?? 'the turn failed', done: true })
        }
      })
      if (!current()) return
      await loadHistory(sessionKey)
      // The stored turn now shows the same text: the local copy goes, unless the turn failed.
      setPending((shown) => (shown && shown.error ? shown : null))
      void loadSessions()
    } catch (error) {
      if (!current()) return
      const aborted = (error as Error).name === 'AbortError'
      setPending({ user: message, reply, error: aborted ? 'Stopped.' : describeError(error), done: true })
    } finally {
      if (current()) {
        abort.current = null
        input.current?.focus()
      }
    }
  }

  const streaming = pending !== null && !pending.done
  const known = sessions.some((s) => s.key === sessionKey)
  const go = (key: string) => {
    location.hash = `#/chat/${encodeURIComponent(key)}`
  }

  return (
    <div class="chat">
      <div class="toolbar">
        <label for="session-pick">Session</label>
        <select id="session-pick" value={sessionKey} onChange={(e) => go(e.currentTarget.value)}>
          {!known && <option value={sessionKey}>{sessionKey} (new)</option>}
          {sessions.map((s) => (
            <option key={s.key} value={s.key}>
              {s.key} ({s.message_count})
            </option>
          ))}
        </select>
        <button type="button" onClick={() => go(newSessionKey())}>
          New session
        </button>
      </div>
      <ErrorNote error={loadError} />
      <div class="chat-scroll" ref={scroller} onScroll={onScroll} role="log" aria-live="polite" aria-busy={streaming} aria-label={`Conversation in session ${sessionKey}`} tabIndex={0}>
        <ol class="messages">
          {history.length === 0 && !pending && <li class="empty muted">No messages in this session yet. Say hello.</li>}
          {history.map((message, index) => (
            <Message key={`${index}-${message.created_at}`} message={message} />
          ))}
          {pending && (
            <>
              <li class="msg msg-user">
                <span class="sr-only">You:</span>
                <div class="bubble">{pending.user}</div>
              </li>
              <li class={`msg msg-assistant${streaming ? ' streaming' : ''}`} data-testid="pending-reply">
                <span class="sr-only">Assistant:</span>
                <div class="bubble">{pending.reply || (streaming ? '…' : '')}</div>
                {pending.error && (
                  <p class="error" role="alert">
                    {pending.error}
                  </p>
                )}
              </li>
            </>
          )}
        </ol>
      </div>
      <form class="composer" onSubmit={sendMessage}>
        <label for="chat-input" class="sr-only">
          Message
        </label>
        <textarea
          id="chat-input"
          ref={input}
          rows={2}
          value={draft}
          placeholder="Message (Enter sends, Shift+Enter: new line)"
          onInput={(e) => setDraft(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault()
              e.currentTarget.form?.requestSubmit()
            }
          }}
        />
        {streaming ? (
          <button type="button" class="send" onClick={() => abort.current?.abort()}>
            Stop
          </button>
        ) : (
          <button type="submit" class="send primary" disabled={!draft.trim()}>
            Send
          </button>
        )}
      </form>
      {!SESSION_KEY.test(sessionKey) && <p class="error">This session key is not valid: use letters, digits and _ . : @ - (at most 128).</p>}
    </div>
  )
}
