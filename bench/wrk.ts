/** wrk, the load generator (Debian's package): installed with apt-get when missing and running as root. */
export function ensureWrk(): string {
  const found = Bun.which('wrk')
  if (found) return found
  if (process.getuid?.() === 0 && Bun.which('apt-get')) {
    console.error('installing wrk with apt-get …')
    Bun.spawnSync(['apt-get', 'install', '-y', '-qq', 'wrk'], { stdout: 'ignore', stderr: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    const installed = Bun.which('wrk')
    if (installed) return installed
  }
  throw new Error('wrk is needed for the throughput figures: install it (Debian/Ubuntu: apt-get install wrk)')
}

