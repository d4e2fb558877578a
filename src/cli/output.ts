export { displayUrl } from '../net/url'

/** `abc12345...xyz67890`: enough to recognise a token, never enough to use it. Short tokens show less. */
export function maskToken(token: string | null): string {
  if (!token) return '(none)'
  const keep = Math.min(8, Math.floor(token.length / 4))
  if (keep < 2) return '****'
  return `${token.slice(0, keep)}...${token.slice(-keep)}`
}

/** Rows as columns two spaces apart, each as wide as its widest cell; the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n')
}

/** An ISO time as `2024-05-01 08:00:00Z`. */
export const isoShort = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')

export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, `${s}s`].filter(Boolean).join(' ')
}

/**
 * Whether what the CLI writes to `stream` is coloured: the one place that decides. FORCE_COLOR wins (`0` or
 * `false` turn colour off, any other value on), then NO_COLOR (any non-empty value: off, no-color.org), then
 * TERM=dumb; otherwise colour only when the stream is a terminal, so pipes and files get plain text.
 */
export function colorEnabled(stream: { isTTY?: boolean } = process.stdout, env: Record<string, string | undefined> = process.env): boolean {
  const force = env.FORCE_COLOR
  if (force !== undefined) return force !== '0' && force !== 'false'
  if (env.NO_COLOR) return false
  if (env.TERM === 'dumb') return false
  return stream.isTTY === true
}

export type Paint = (text: string) => string

/** The styles of the help, as plain functions when colour is off. */
export function palette(enabled: boolean): Record<'bold' | 'cyan' | 'gray' | 'underline', Paint> {
  const style = (open: number, close: number): Paint => (enabled ? (text) => `\x1b[${open}m${text}\x1b[${close}m` : (text) => text)
  return { bold: style(1, 22), cyan: style(36, 39), gray: style(90, 39), underline: style(4, 24) }
}
