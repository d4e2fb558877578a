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
