import { useEffect, useState } from 'preact/hooks'
import { api } from '../api'
import { Badge, ConfirmButton, describeError, ErrorNote, formatTime, usePoll } from '../util'

interface Job {
  id: string
  name: string
  schedule: string
  timezone: string
  enabled: boolean
  mode: 'agent' | 'direct'
  message: string
  channel: string | null
  chat_id: string | null
  next_run: string | null
  last_run: string | null
  last_status: 'running' | 'ok' | 'failed' | null
}

interface Run {
  id: string
  trigger: string
  status: 'running' | 'ok' | 'failed'
  started_at: string
  finished_at: string | null
  reply?: string
  error?: string
}

function Runs({ jobId }: { jobId: string }) {
  const [runs, setRuns] = useState<Run[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  usePoll(
    async (current) => {
      try {
        const { runs } = await api<{ runs: Run[] }>(`/api/cron/${encodeURIComponent(jobId)}/runs?limit=20`)
        if (current()) setRuns(runs)
      } catch (e) {
        if (current()) setError(e)
      }
    },
    3000,
    [jobId],
  )
  return (
    <div class="runs">
      <ErrorNote error={error} />
      {runs?.length === 0 && <p class="muted small">No runs yet.</p>}
      <ol class="run-list">
        {(runs ?? []).map((run) => (
          <li key={run.id} class="run">
            <Badge kind={run.status}>{run.status}</Badge> <span class="small">{formatTime(run.started_at)}</span> <span class="muted small">{run.trigger}</span>
            {run.reply && <p class="text small">{run.reply}</p>}
            {run.error && <p class="error small">{run.error}</p>}
          </li>
        ))}
      </ol>
    </div>
  )
}

/** The gateway's reading of a schedule: the same check as `create`, the zone it would use, the next runs. */
type ServerPreview = { description: string; next_runs: string[]; timezone: string } | { error: unknown }

function useServerPreview(schedule: string, timezone: string): ServerPreview | null {
  const [preview, setPreview] = useState<ServerPreview | null>(null)
  useEffect(() => {
    if (!schedule.trim()) {
      setPreview(null)
      return
    }
    const controller = new AbortController()
    // Asked once typing pauses: the gateway reads the schedule exactly as `create` would.
    const timer = setTimeout(() => {
      const query = new URLSearchParams({ schedule: schedule.trim() })
      if (timezone.trim()) query.set('timezone', timezone.trim())
      api<{ description: string; next_runs: string[]; timezone: string }>(`/api/cron/preview?${query}`, { signal: controller.signal })
        .then(setPreview)
        .catch((error) => {
          if ((error as Error).name !== 'AbortError') setPreview({ error })
        })
    }, 200)
    return () => {
      clearTimeout(timer)
      controller.abort()
    }
  }, [schedule, timezone])
  return preview
}

function CreateForm({ onCreated }: { onCreated: (job: Job) => void }) {
  const [name, setName] = useState('')
  const [schedule, setSchedule] = useState('0 9 * * 1')
  const [timezone, setTimezone] = useState('')
  const [mode, setMode] = useState<'agent' | 'direct'>('agent')
  const [message, setMessage] = useState('')
  const [channel, setChannel] = useState('')
  const [chatId, setChatId] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const server = useServerPreview(schedule, timezone)
  const defaultZone = server && 'timezone' in server ? server.timezone : null

  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    const body: Record<string, unknown> = { schedule: schedule.trim(), mode, message }
    if (name.trim()) body.name = name.trim()
    if (timezone.trim()) body.timezone = timezone.trim()
    if (channel.trim()) body.channel = channel.trim()
    if (chatId.trim()) body.chat_id = chatId.trim()
    try {
      const { job } = await api<{ job: Job }>('/api/cron/create', { method: 'POST', body })
      setError(null)
      setName('')
      setMessage('')
      onCreated(job)
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form class="card form" onSubmit={submit} aria-labelledby="cron-new">
      <h2 id="cron-new">New job</h2>
      <div class="fields">
        <label>
          Name
          <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="optional" />
        </label>
        <label>
          Schedule
          <input name="schedule" required value={schedule} onInput={(e) => setSchedule(e.currentTarget.value)} aria-describedby="schedule-preview" spellcheck={false} />
        </label>
        <label>
          Time zone
          <input name="timezone" value={timezone} onInput={(e) => setTimezone(e.currentTarget.value)} placeholder={defaultZone && !timezone ? `default: ${defaultZone}` : 'gateway default'} spellcheck={false} />
        </label>
        <label>
          Mode
          <select name="mode" value={mode} onChange={(e) => setMode(e.currentTarget.value as 'agent' | 'direct')}>
            <option value="agent">agent — the assistant answers it</option>
            <option value="direct">direct — delivered as written</option>
          </select>
        </label>
        <label class="wide">
          Message
          <textarea name="message" required rows={2} value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
        </label>
        <label>
          Channel
          <input name="channel" value={channel} onInput={(e) => setChannel(e.currentTarget.value)} placeholder={mode === 'direct' ? 'required' : 'optional'} />
        </label>
        <label>
          Chat id
          <input name="chat_id" value={chatId} onInput={(e) => setChatId(e.currentTarget.value)} placeholder={mode === 'direct' ? 'required' : 'optional'} />
        </label>
      </div>
      <div id="schedule-preview" class="preview" aria-live="polite">
        <p>{server && 'description' in server ? server.description : server && 'error' in server ? 'Not a schedule the gateway can run:' : '…'}</p>
        {server && 'error' in server && <p class="error small">{describeError(server.error)}</p>}
        {server && 'next_runs' in server && (
          <p class="muted small">{server.next_runs.length ? `Next (your time): ${server.next_runs.slice(0, 3).map(formatTime).join(' · ')}` : 'It will not run again.'}</p>
        )}
      </div>
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={busy}>
        Create job
      </button>
    </form>
  )
}

export function CronPage() {
  const [jobs, setJobs] = useState<Job[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [notice, setNotice] = useState('')
  const [open, setOpen] = useState<Record<string, boolean>>({})

  const load = async () => {
    try {
      setJobs((await api<{ jobs: Job[] }>('/api/cron')).jobs)
      setError(null)
    } catch (e) {
      setError(e)
    }
  }
  usePoll(load, 5000)

  const act = async (what: string, call: () => Promise<unknown>) => {
    try {
      await call()
      setNotice(what)
      setError(null)
    } catch (e) {
      setNotice('')
      setError(new Error(`${what.replace(/\.$/, '')} failed: ${describeError(e)}`))
    }
    await load()
  }

  return (
    <section aria-labelledby="cron-title">
      <div class="page-head">
        <h1 id="cron-title">Cron jobs</h1>
        <button type="button" onClick={load}>
          Refresh
        </button>
      </div>
      <CreateForm
        onCreated={(job) => {
          setNotice(`Created job ${job.name}.`)
          void load()
        }}
      />
      <ErrorNote error={error} />
      <p class="muted small notice" role="status">
        {notice}
      </p>
      {jobs?.length === 0 && <p class="muted">No jobs yet.</p>}
      <ul class="cards">
        {(jobs ?? []).map((job) => (
          <li class="card job" key={job.id} data-job-id={job.id}>
            <div class="row">
              <strong class="grow">{job.name}</strong>
              <Badge kind={job.enabled ? 'enabled' : 'disabled'}>{job.enabled ? 'enabled' : 'disabled'}</Badge>
              {job.last_status && <Badge kind={job.last_status}>last: {job.last_status}</Badge>}
            </div>
            <div class="small">
              <code>{job.schedule}</code> · {job.timezone}
            </div>
            <div class="muted small">
              {job.mode} · next {formatTime(job.next_run)} · last {formatTime(job.last_run)}
              {job.channel ? ` · to ${job.channel}:${job.chat_id ?? ''}` : ''}
            </div>
            <p class="text small">{job.message}</p>
            <div class="actions">
              <button type="button" class="toggle" aria-pressed={job.enabled} onClick={() => act(`${job.enabled ? 'Disabled' : 'Enabled'} ${job.name}.`, () => api(`/api/cron/${encodeURIComponent(job.id)}/toggle`, { method: 'POST', body: { enabled: !job.enabled } }))}>
                {job.enabled ? 'Disable' : 'Enable'}
              </button>
              <button type="button" onClick={() => act(`Triggered ${job.name}.`, () => api('/api/cron/trigger', { method: 'POST', body: { job_id: job.id } }))}>
                Run now
              </button>
              <button type="button" aria-expanded={!!open[job.id]} onClick={() => setOpen({ ...open, [job.id]: !open[job.id] })}>
                Runs
              </button>
              <ConfirmButton label="Delete" confirmLabel={`Delete ${job.name}`} onConfirm={() => act(`Deleted ${job.name}.`, () => api(`/api/cron/${encodeURIComponent(job.id)}`, { method: 'DELETE' }))} />
            </div>
            {open[job.id] && <Runs jobId={job.id} />}
          </li>
        ))}
      </ul>
    </section>
  )
}
