/** `abc12345...xyz67890`: enough to recognise a token, never enough to use it. Short tokens show less. */
export function maskToken(token: string | null): string {
  if (!token) return '(none)'
  const keep = Math.min(8, Math.floor(token.length / 4))
  if (keep < 2) return '****'
  return `${token.slice(0, keep)}...${token.slice(-keep)}`
}

/** The URL a person on this machine would open: a wildcard bind address is reached through localhost. */
export function displayUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `http://${h}:${port}`
}
