import { Fragment } from 'preact'
import { useState } from 'preact/hooks'
import { api } from '../api'
import { Badge, describeError, ErrorNote, formatDuration, formatTime, usePoll } from '../util'

interface ChannelReport {
  type: string
  state: string
  error?: string
  next_retry_at?: string
  failures?: number
}
interface ModelReport {
  name: string
  role: string
  configured: boolean
  problem?: string
  recent_failures?: { at: string; reason: string }[]
  last_success_at?: string | null
}
interface Status {
  version: string
  pid: number
  started_at: string
  uptime: number
  config_path: string
  /** absent on gateways without live reload */
  config?: { state: 'ok' | 'invalid'; error?: string; since?: string }
  data_dir: string
  bind: { host: string; port: number }
  model: { name: string | null; configured: boolean; problem?: string }
  models: ModelReport[]
  usage_today: { input_tokens: number; output_tokens: number; turns: number; budget: { daily_tokens: number; used: number; exhausted: boolean; resets_at: string } | null } | null
  channels: Record<string, ChannelReport>
  mcp: Record<string, { state: string; tools: string[]; error?: string }>
  queue: Record<string, number> | null
  cron: { jobs: number; enabled: number; next_run: string | null } | null
}
interface PairingRequest {
  code: string
  channel: string
  sender_id: string
  username: string | null
  chat_id: string
  created_at: string
  expires_at: string
}

function Pairing() {
  const [requests, setRequests] = useState<PairingRequest[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [notice, setNotice] = useState('')
  const load = async () => {
    try {
      setRequests((await api<{ requests: PairingRequest[] }>('/api/pairing')).requests)
    } catch (e) {
      setError(e)
    }
  }
  usePoll(load, 5000)
  const decide = async (what: string, path: string, body: unknown) => {
    try {
      await api(path, { method: 'POST', body })
      setNotice(what)
      setError(null)
    } catch (e) {
      setError(new Error(`${what} failed: ${describeError(e)}`))
    }
    await load()
  }
  return (
    <section class="card" aria-labelledby="pairing-title">
      <h2 id="pairing-title">Pairing requests</h2>
      <ErrorNote error={error} />
      <p class="muted small notice" role="status">
        {notice}
      </p>
      {requests?.length === 0 && <p class="muted">No pending requests. Unknown senders of a channel with dmPolicy "pairing" appear here.</p>}
      {!!requests?.length && <p class="muted small">A request that is not approved expires after 1 hour.</p>}
      <ul class="plain">
        {(requests ?? []).map((r) => (
          <li key={r.code} class="row">
            <div class="grow">
              <code>{r.code}</code> · {r.channel} · {r.username ? `@${r.username}` : r.sender_id}
              <div class="muted small">expires {formatTime(r.expires_at)}</div>
            </div>
            <button type="button" class="primary" onClick={() => decide(`Approved ${r.code}`, '/api/pairing/approve', { code: r.code })}>
              Approve
            </button>
          </li>
        ))}
      </ul>
    </section>
  )
}

const number = (n: number) => n.toLocaleString()

export function StatusPage() {
  const [status, setStatus] = useState<Status | null>(null)
  const [error, setError] = useState<unknown>(null)
  usePoll(async () => {
    try {
      setStatus(await api<Status>('/api/status'))
      setError(null)
    } catch (e) {
      setError(e)
    }
  }, 5000)

  return (
    <section aria-labelledby="status-title">
      <div class="page-head">
        <h1 id="status-title">Status</h1>
      </div>
      <ErrorNote error={error} />
      {status && (
        <div class="grid">
          <section class="card" aria-labelledby="gw-title">
            <h2 id="gw-title">Gateway</h2>
            <dl class="facts">
              <dt>Version</dt>
              <dd>{status.version}</dd>
              <dt>Uptime</dt>
              <dd>
                {formatDuration(status.uptime)} <span class="muted small">since {formatTime(status.started_at)}</span>
              </dd>
              <dt>Listening</dt>
              <dd>
                {status.bind.host}:{status.bind.port} · pid {status.pid}
              </dd>
              <dt>Config</dt>
              <dd class="path">{status.config_path}</dd>
            </dl>
            {status.config?.state === 'invalid' && (
              <p class="error small" role="alert">
                The config file is invalid since {formatTime(status.config.since ?? null)}; the gateway keeps the last valid one: {status.config.error}
              </p>
            )}
          </section>
          <section class="card" aria-labelledby="models-title">
            <h2 id="models-title">Models</h2>
            {status.model.problem && <p class="error">{status.model.problem}</p>}
            <ul class="plain">
              {status.models.map((m) => {
                const failures = m.recent_failures ?? []
                const last = failures.at(-1)
                return (
                  <li key={m.name}>
                    <div class="row">
                      <span class="grow">
                        {m.name} <span class="muted small">{m.role}</span>
                      </span>
                      <Badge kind={!m.configured ? 'failed' : failures.length ? 'processing' : 'delivered'}>
                        {!m.configured ? 'not configured' : failures.length ? `${failures.length} recent failure${failures.length === 1 ? '' : 's'}` : 'ready'}
                      </Badge>
                    </div>
                    {m.problem && <p class="error small">{m.problem}</p>}
                    {last && (
                      <p class="muted small text">
                        Last failure {formatTime(last.at)}: {last.reason}
                      </p>
                    )}
                  </li>
                )
              })}
              {status.models.length === 0 && <li class="muted">{status.model.name ?? 'No model configured.'}</li>}
            </ul>
          </section>
          <section class="card" aria-labelledby="usage-title">
            <h2 id="usage-title">Today's usage</h2>
            {status.usage_today ? (
              <dl class="facts">
                <dt>Turns</dt>
                <dd>{number(status.usage_today.turns)}</dd>
                <dt>Tokens in</dt>
                <dd>{number(status.usage_today.input_tokens)}</dd>
                <dt>Tokens out</dt>
                <dd>{number(status.usage_today.output_tokens)}</dd>
                {status.usage_today.budget && (
                  <>
                    <dt>Budget</dt>
                    <dd>
                      {number(status.usage_today.budget.used)} / {number(status.usage_today.budget.daily_tokens)}
                      {status.usage_today.budget.exhausted ? ' (exhausted)' : ''}
                    </dd>
                  </>
                )}
              </dl>
            ) : (
              <p class="muted">—</p>
            )}
          </section>
          <section class="card" aria-labelledby="queue-title">
            <h2 id="queue-title">Queue</h2>
            {status.queue ? (
              <dl class="facts">
                {Object.entries(status.queue).map(([state, n]) => (
                  <Fragment key={state}>
                    <dt>{state}</dt>
                    <dd>{number(n)}</dd>
                  </Fragment>
                ))}
              </dl>
            ) : (
              <p class="muted">—</p>
            )}
            {status.cron && (
              <p class="small">
                Cron: {status.cron.enabled} of {status.cron.jobs} jobs enabled · next {formatTime(status.cron.next_run)}
              </p>
            )}
          </section>
          <section class="card" aria-labelledby="channels-title">
            <h2 id="channels-title">Channels</h2>
            <ul class="plain">
              {Object.entries(status.channels).map(([name, c]) => (
                <li key={name}>
                  <div class="row">
                    <span class="grow">
                      {name} <span class="muted small">{c.type}</span>
                    </span>
                    <Badge kind={c.state}>{c.state}</Badge>
                  </div>
                  {c.error && <p class="error small">{c.error}</p>}
                </li>
              ))}
              {Object.keys(status.channels).length === 0 && <li class="muted">No channels configured.</li>}
            </ul>
          </section>
          <section class="card" aria-labelledby="mcp-title">
            <h2 id="mcp-title">MCP servers</h2>
            <ul class="plain">
              {Object.entries(status.mcp).map(([name, server]) => (
                <li key={name}>
                  <div class="row">
                    <span class="grow">
                      {name} <span class="muted small">{server.tools.length} tools</span>
                    </span>
                    <Badge kind={server.state}>{server.state}</Badge>
                  </div>
                  {server.error && <p class="error small">{server.error}</p>}
                </li>
              ))}
              {Object.keys(status.mcp).length === 0 && <li class="muted">No MCP servers configured.</li>}
            </ul>
          </section>
        </div>
      )}
      <Pairing />
    </section>
  )
}
