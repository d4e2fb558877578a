import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks'
import { ApiError, stream, token } from '../api'
import { describeError } from '../util'

interface LogEntry {
  ts?: string
  level?: string
  tag?: string
  msg?: string
  [field: string]: unknown
}

/** Lines kept on the page; older ones drop off the top. */
const KEEP = 1000
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const

/** The fields of a line beyond ts/level/tag/msg, as `key=value` text. */
function extraFields(entry: LogEntry): string {
  const parts: string[] = []
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'ts' || key === 'level' || key === 'tag' || key === 'msg') continue
    parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  }
  return parts.join(' ')
}

const clock = (ts: string | undefined) => {
  if (!ts) return ''
  const date = new Date(ts)
  return Number.isNaN(date.getTime()) ? ts : date.toLocaleTimeString(undefined, { hour12: false })
}

type Connection = 'connecting' | 'live' | 'closed'

export function LogsPage() {
  const [entries, setEntries] = useState<{ id: number; entry: LogEntry }[]>([])
  const [level, setLevel] = useState('info')
  const [search, setSearch] = useState('')
  const [query, setQuery] = useState('')
  const [connection, setConnection] = useState<Connection>('connecting')
  const [problem, setProblem] = useState<string | null>(null)
  const [follow, setFollow] = useState(true)
  const [attempt, setAttempt] = useState(0)
  const box = useRef<HTMLDivElement>(null)
  const nextId = useRef(0)

  // The search goes to the server once typing pauses.
  useEffect(() => {
    const timer = setTimeout(() => setQuery(search.trim()), 300)
    return () => clearTimeout(timer)
  }, [search])

  useEffect(() => {
    const controller = new AbortController()
    let retry: ReturnType<typeof setTimeout> | undefined
    const params = new URLSearchParams({ lines: '200', level })
    if (query) params.set('q', query)
    setEntries([])
    setConnection('connecting')
    setProblem(null)
    // New lines arrive in bursts: they are gathered and shown once per frame.
    let batch: { id: number; entry: LogEntry }[] = []
    let frame = 0
    const flush = () => {
      frame = 0
      const add = batch
      batch = []
      setEntries((current) => {
        const all = current.concat(add)
        return all.length > KEEP ? all.slice(all.length - KEEP) : all
      })
    }
    // Without a token, /api/logs/stream can only refuse (it always needs one): that is said here, not by the login.
    const withoutToken = token.get() === null
    stream(`/api/logs/stream?${params}`, { signal: controller.signal, quiet401: withoutToken }, ({ event, data }) => {
      if (event !== 'log') return
      let entry: LogEntry
      try {
        entry = JSON.parse(data)
      } catch {
        entry = { msg: data }
      }
      batch.push({ id: nextId.current++, entry })
      // A hidden tab gets no frames: it keeps only what it could show.
      if (batch.length > KEEP) batch = batch.slice(batch.length - KEEP)
      if (!frame) frame = requestAnimationFrame(flush)
    }, () => setConnection('live'))
      .then(() => {
        if (controller.signal.aborted) return
        setConnection('closed')
        retry = setTimeout(() => setAttempt((n) => n + 1), 2000)
      })
      .catch((error) => {
        if (controller.signal.aborted) return
        setConnection('closed')
        if (error instanceof ApiError && error.status === 401) {
          setProblem('Logs always need the API token, and this page is signed in without one. Set gateway.auth.token, then sign in with it.')
          return
        }
        setProblem(describeError(error))
        retry = setTimeout(() => setAttempt((n) => n + 1), 2000)
      })
    return () => {
      controller.abort()
      clearTimeout(retry)
      if (frame) cancelAnimationFrame(frame)
    }
  }, [level, query, attempt])

  useLayoutEffect(() => {
    const el = box.current
    if (el && follow) el.scrollTop = el.scrollHeight
  }, [entries, follow])

  const onScroll = () => {
    const el = box.current
    if (!el) return
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24
    if (atBottom !== follow) setFollow(atBottom)
  }

  return (
    <section class="logs" aria-labelledby="logs-title">
      <div class="page-head">
        <h1 id="logs-title">Logs</h1>
        <span class={`badge badge-${connection === 'live' ? 'delivered' : connection === 'closed' ? 'failed' : 'queued'}`} role="status">
          {connection}
        </span>
      </div>
      <div class="toolbar">
        <label for="log-level">Level</label>
        <select id="log-level" value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
          {LEVELS.map((l) => (
            <option key={l} value={l}>
              {l} and above
            </option>
          ))}
        </select>
        <label for="log-search">Search</label>
        <input id="log-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="text in the line" />
        <button type="button" onClick={() => setEntries([])}>
          Clear
        </button>
      </div>
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <div class="log-box" ref={box} onScroll={onScroll} tabIndex={0} aria-label="Log lines, newest last">
        <ol class="log-lines">
          {entries.map(({ id, entry }) => (
            <li key={id} class={`log log-${String(entry.level ?? 'info').replace(/[^a-z]/g, '')}`}>
              <span class="log-ts">{clock(entry.ts)}</span> <span class="log-level">{entry.level ?? ''}</span> {entry.tag && <span class="log-tag">[{entry.tag}]</span>} <span class="log-msg">{entry.msg ?? ''}</span> <span class="log-extra">{extraFields(entry)}</span>
            </li>
          ))}
        </ol>
      </div>
      {!follow && (
        <button type="button" class="jump primary" onClick={() => setFollow(true)}>
          Follow new lines ↓
        </button>
      )}
    </section>
  )
}
