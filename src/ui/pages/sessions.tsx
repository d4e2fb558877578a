import { useEffect, useState } from 'preact/hooks'
import { api, type SessionSummary } from '../api'
import { ConfirmButton, ErrorNote, formatTime } from '../util'


export function SessionsPage() {
  const [sessions, setSessions] = useState<SessionSummary[] | null>(null)
  const [total, setTotal] = useState(0)
  const [filter, setFilter] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [notice, setNotice] = useState('')

  const load = async () => {
    try {
      const body = await api<{ sessions: SessionSummary[]; total: number }>('/api/sessions?limit=500')
      setSessions(body.sessions)
      setTotal(body.total)
      setError(null)
    } catch (e) {
      setError(e)
    }
  }
  useEffect(() => {
    void load()
  }, [])

  const remove = async (key: string) => {
    try {
      await api(`/api/sessions/${encodeURIComponent(key)}`, { method: 'DELETE' })
      setNotice(`Deleted session ${key}.`)
      await load()
    } catch (e) {
      setError(e)
    }
  }

  const needle = filter.trim().toLowerCase()
  const shown = (sessions ?? []).filter((s) => !needle || s.key.toLowerCase().includes(needle))

  return (
    <section aria-labelledby="sessions-title">
      <div class="page-head">
        <h1 id="sessions-title">Sessions</h1>
        <button type="button" onClick={load}>
          Refresh
        </button>
      </div>
      <div class="toolbar">
        <label for="session-filter">Search</label>
        <input id="session-filter" type="search" placeholder="Filter by key or channel" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      </div>
      <ErrorNote error={error} />
      <p class="muted small" role="status">
        {notice ? `${notice} ` : ''}
        {sessions === null ? 'Loading…' : `${shown.length} shown of ${total}.`}
      </p>
      <ul class="cards">
        {shown.map((s) => (
          <li class="card row" key={s.key}>
            <div class="grow">
              <a href={`#/chat/${encodeURIComponent(s.key)}`} class="key">
                {s.key}
              </a>
              <div class="muted small">
                {s.message_count} messages · updated {formatTime(s.updated_at)}
                {s.channel ? ` · ${s.channel}` : ''}
              </div>
            </div>
            <ConfirmButton label="Delete" confirmLabel={`Delete ${s.key}`} onConfirm={() => remove(s.key)} />
          </li>
        ))}
      </ul>
    </section>
  )
}
