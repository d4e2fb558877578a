import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError } from './api'

/**
 * Runs `task` now and every `ms` while the page is visible; a hidden tab does not poll the gateway. `current()`
 * turns false once `deps` changed or the page went away: an answer to an older question is then dropped.
 */
export function usePoll(task: (current: () => boolean) => Promise<void> | void, ms: number, deps: unknown[] = []) {
  const latest = useRef(task)
  latest.current = task
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let stopped = false
    const tick = async () => {
      timer = undefined
      if (stopped || document.visibilityState !== 'visible') return
      try {
        await latest.current(() => !stopped)
      } finally {
        if (!stopped && document.visibilityState === 'visible' && timer === undefined) timer = setTimeout(tick, ms)
      }
    }
    const onVisibility = () => {
      if (document.visibilityState === 'visible' && timer === undefined) void tick()
    }
    document.addEventListener('visibilitychange', onVisibility)
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
      document.removeEventListener('visibilitychange', onVisibility)
    }
  }, [ms, ...deps])
}

/** What a failed call should tell the user (the API's own message names the field or the reason). */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.status === 0 ? error.message : `${error.message} (${error.code})`
  return error instanceof Error ? error.message : String(error)
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null
  return (
    <p class="error" role="alert">
      {describeError(error)}
    </p>
  )
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })
}

export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (d) return `${d}d ${h}h`
  if (h) return `${h}h ${m}m`
  if (m) return `${m}m ${s}s`
  return `${s}s`
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${kind.replace(/[^a-z0-9-]/gi, '')}`}>{children}</span>
}

/** A destructive action that asks first, in place (no window.confirm: it works the same by keyboard and in tests). */
export function ConfirmButton({ label, confirmLabel, onConfirm, disabled }: { label: string; confirmLabel: string; onConfirm: () => void; disabled?: boolean }) {
  const [asking, setAsking] = useState(false)
  const confirmRef = useRef<HTMLButtonElement>(null)
  useEffect(() => {
    if (asking) confirmRef.current?.focus()
  }, [asking])
  if (!asking) {
    return (
      <button type="button" class="danger" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    )
  }
  return (
    <span class="confirm" role="group" aria-label={confirmLabel}>
      <button
        type="button"
        class="danger solid"
        ref={confirmRef}
        onClick={() => {
          setAsking(false)
          onConfirm()
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  )
}

/** Pretty JSON as text, for tool inputs, outputs and log fields. */
export function json(value: unknown): string {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2)
  } catch {
    return String(value)
  }
}
