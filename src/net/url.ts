/** The URL a person on this machine would open: a wildcard bind address is reached through localhost. */
export function displayUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `http://${h}:${port}`
}

/** Where a local client reaches a gateway bound to `host`: a wildcard bind address is reached on loopback. */
export function localUrl({ host, port }: { host: string; port: number }): string {
  return displayUrl(host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, port)
}
