import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, token, whenUnauthorized } from './api'
import { ChatPage } from './pages/chat'
import { CronPage } from './pages/cron'
import { LogsPage } from './pages/logs'
import { MessagesPage } from './pages/messages'
import { SessionsPage } from './pages/sessions'
import { StatusPage } from './pages/status'
import { ThemeToggle } from './theme'
import { describeError } from './util'

const PAGES = [
  { path: 'chat', label: 'Chat' },
  { path: 'sessions', label: 'Sessions' },
  { path: 'messages', label: 'Messages' },
  { path: 'cron', label: 'Cron' },
  { path: 'logs', label: 'Logs' },
  { path: 'status', label: 'Status' },
] as const

/** `#/chat/some%3Akey` → ["chat", "some:key"] */
function parseHash(hash: string): { page: string; arg: string | null } {
  const [page = '', ...rest] = hash.replace(/^#\/?/, '').split('/')
  let arg: string | null = null
  if (rest.length) {
    try {
      arg = decodeURIComponent(rest.join('/'))
    } catch {
      arg = null
    }
  }
  return { page: PAGES.some((p) => p.path === page) ? page : 'chat', arg }
}

function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash))
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash))
    window.addEventListener('hashchange', onChange)
    return () => window.removeEventListener('hashchange', onChange)
  }, [])
  return route
}

type Gate = { state: 'checking' } | { state: 'login'; message: string | null } | { state: 'in' }

function Login({ message, onIn }: { message: string | null; onIn: () => void }) {
  const [value, setValue] = useState('')
  const [problem, setProblem] = useState<string | null>(message)
  const [busy, setBusy] = useState(false)
  const submit = async (event: Event) => {
    event.preventDefault()
    const candidate = value.trim()
    if (!candidate) {
      setProblem('Enter the gateway token.')
      return
    }
    setBusy(true)
    token.set(candidate)
    try {
      await api('/api/status', { quiet401: true })
      onIn()
    } catch (error) {
      token.clear()
      setProblem(error instanceof ApiError && error.status === 401 ? 'That token was not accepted by the gateway.' : describeError(error))
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class="login">
      <form class="card" onSubmit={submit}>
        <h1>xopcbot</h1>
        <p class="muted">This gateway needs its API token. It is kept in this tab only (sessionStorage) and sent as a Bearer header.</p>
        {problem && (
          <p class="error" role="alert">
            {problem}
          </p>
        )}
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" value={value} onInput={(e) => setValue(e.currentTarget.value)} autofocus />
        <p class="muted small">
          Show it with <code>xopcbot gateway token</code>.
        </p>
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  )
}

function App() {
  const [gate, setGate] = useState<Gate>({ state: 'checking' })
  const route = useRoute()

  useEffect(() => {
    whenUnauthorized((message) => {
      const hadToken = token.get() !== null
      token.clear()
      setGate({ state: 'login', message: hadToken ? `The gateway refused the token (${message}). Sign in again.` : null })
    })
    // Without a token, the API may let this page in anyway (loopback, no token configured).
    api('/api/status', { quiet401: true })
      .then(() => setGate({ state: 'in' }))
      .catch((error) => {
        if (error instanceof ApiError && error.status === 401) {
          const hadToken = token.get() !== null
          token.clear()
          setGate({ state: 'login', message: hadToken ? 'The saved token is no longer accepted. Sign in again.' : null })
        } else setGate({ state: 'login', message: describeError(error) })
      })
  }, [])

  if (gate.state === 'checking') return <main class="center muted">Connecting…</main>
  if (gate.state === 'login') return <Login message={gate.message} onIn={() => setGate({ state: 'in' })} />

  const signOut = () => {
    token.clear()
    setGate({ state: 'login', message: 'Signed out.' })
  }
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">xopcbot</span>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a key={p.path} href={`#/${p.path}`} aria-current={route.page === p.path ? 'page' : undefined}>
              {p.label}
            </a>
          ))}
        </nav>
        <div class="top-actions">
          <ThemeToggle />
          {token.get() !== null && (
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main" class={`page page-${route.page}`} tabIndex={-1}>
        {route.page === 'chat' && <ChatPage sessionKey={route.arg ?? 'default'} />}
        {route.page === 'sessions' && <SessionsPage />}
        {route.page === 'messages' && <MessagesPage />}
        {route.page === 'cron' && <CronPage />}
        {route.page === 'logs' && <LogsPage />}
        {route.page === 'status' && <StatusPage />}
      </main>
    </div>
  )
}

render(<App />, document.getElementById('app')!)
