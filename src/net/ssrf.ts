import { lookup as dnsLookup } from 'node:dns/promises'
import { isIPv4, isIPv6 } from 'node:net'

/** One address a name resolves to (the shape of `dns.lookup(…, { all: true })`). */
export interface ResolvedAddress {
  address: string
  family: number
}

/** Resolves a host name to all its addresses: `dns.lookup` in the gateway, a scripted resolver in tests. */
export type Resolve = (hostname: string) => Promise<ResolvedAddress[]>

export const systemResolve: Resolve = (hostname) => dnsLookup(hostname, { all: true, verbatim: true })

type Range = [prefix: number[], bits: number, what: string]

// Ranges that reach this machine, its networks or its cloud's control plane rather than the public internet.
const V4_RANGES: Range[] = [
  [[0], 8, 'an unspecified ("this network") address'],
  [[10], 8, 'a private address'],
  [[100, 64], 10, 'a carrier-grade NAT (shared) address'],
  [[127], 8, 'a loopback address'],
  [[169, 254], 16, 'a link-local address (this range holds the cloud metadata service 169.254.169.254)'],
  [[172, 16], 12, 'a private address'],
  [[192, 0, 0], 24, 'a reserved (IETF protocol) address'],
  [[192, 0, 2], 24, 'a documentation address'],
  [[192, 168], 16, 'a private address'],
  [[198, 18], 15, 'a benchmarking address'],
  [[198, 51, 100], 24, 'a documentation address'],
  [[203, 0, 113], 24, 'a documentation address'],
  [[224], 4, 'a multicast address'],
  [[240], 4, 'a reserved or broadcast address'],
]

const V6_RANGES: Range[] = [
  [[0xfc], 7, 'a private (unique local) address'],
  [[0xfe, 0x80], 10, 'a link-local address'],
  [[0xfe, 0xc0], 10, 'a private (site-local) address'],
  [[0xff], 8, 'a multicast address'],
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, 'a discard-only address'],
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'a documentation address'],
  [[0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48, 'a local-use NAT64 address'],
  // Teredo tunnels reach an IPv4 address that cannot be checked from here.
  [[0x20, 0x01, 0, 0], 32, 'a Teredo tunnel address'],
]

function inRange(bytes: number[], [prefix, bits]: Range): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const i = bit >> 3
    if (((bytes[i] ?? 0) ^ (prefix[i] ?? 0)) & (0x80 >> (bit & 7))) return false
  }
  return true
}

function v4Bytes(address: string): number[] {
  return address.split('.').map(Number)
}

/** The 16 bytes of an IPv6 address (`isIPv6` must hold; a zone such as `%eth0` is ignored). */
function v6Bytes(address: string): number[] {
  let text = address.split('%')[0]!.toLowerCase()
  const tail: number[] = []
  const lastColon = text.lastIndexOf(':')
  if (text.slice(lastColon + 1).includes('.')) {
    tail.push(...v4Bytes(text.slice(lastColon + 1)))
    text = text.slice(0, lastColon + 1) + '0:0'
  }
  const [head, rest] = text.includes('::') ? text.split('::') as [string, string] : [text, null]
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)))
  const left = groups(head)
  const right = rest === null ? [] : groups(rest)
  const words = rest === null ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right]
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff])
  if (tail.length) bytes.splice(12, 4, ...tail)
  return bytes
}

function classifyV4(address: string): string | null {
  const bytes = v4Bytes(address)
  for (const range of V4_RANGES) if (inRange(bytes, range)) return range[2]
  return null
}

function classifyV6(address: string): string | null {
  const bytes = v6Bytes(address)
  const zero = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0)
  const embedded = (at: number) => bytes.slice(at, at + 4).join('.')
  if (zero(0, 16)) return 'an unspecified address'
  if (zero(0, 15) && bytes[15] === 1) return 'a loopback address'
  // Forms that carry an IPv4 address are judged by it: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
  // (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return classifyV4(embedded(12))
  if (zero(0, 12)) return classifyV4(embedded(12))
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zero(4, 12)) return classifyV4(embedded(12))
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return classifyV4(embedded(2))
  for (const range of V6_RANGES) if (inRange(bytes, range)) return range[2]
  return null
}

/**
 * Why `address` (an IPv4 or IPv6 address) is not a public internet address — "a loopback address", "a private
 * address", … — or null when it is one.
 */
export function nonPublicReason(address: string): string | null {
  if (isIPv4(address)) return classifyV4(address)
  if (isIPv6(address)) return classifyV6(address)
  return 'not an IP address'
}

/** A URL's host as an IP address when it is one (WHATWG URL parsing has already normalised 0x7f.1, 2130706433, …). */
function ipLiteral(hostname: string): string | null {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
  return isIPv4(bare) || isIPv6(bare) ? bare : null
}

export type GuardResult = { ok: true; address: string; family: 4 | 6 } | { ok: false; reason: string }

/**
 * Where a request to `url` may connect: the address it was checked against. Every address the host resolves to
 * must be public (one private answer among public ones is refused, since the resolver's order decides which one
 * a client uses), unless `allowPrivate`. The caller connects to the returned address, not to the name again,
 * so that a second DNS answer (rebinding) cannot send it elsewhere.
 */
export async function checkDestination(url: URL, { allowPrivate, resolve = systemResolve }: { allowPrivate: boolean; resolve?: Resolve }): Promise<GuardResult> {
  const host = url.hostname
  const literal = ipLiteral(host)
  let addresses: ResolvedAddress[]
  if (literal) addresses = [{ address: literal, family: isIPv4(literal) ? 4 : 6 }]
  else {
    try {
      addresses = await resolve(host)
    } catch (error) {
      const code = (error as { code?: string }).code
      return { ok: false, reason: `cannot resolve ${host}${code ? ` (${code})` : ''}` }
    }
    if (addresses.length === 0) return { ok: false, reason: `cannot resolve ${host} (no addresses)` }
  }
  if (!allowPrivate) {
    for (const { address } of addresses) {
      const why = nonPublicReason(address)
      if (why) {
        const where = literal ? `${address} is` : `${host} resolves to ${address},`
        return { ok: false, reason: `refused: ${where} ${why}; only public internet addresses are fetched (agent.webFetch.allowPrivate is off)` }
      }
    }
  }
  const first = addresses[0]!
  return { ok: true, address: first.address, family: first.family === 6 || isIPv6(first.address) ? 6 : 4 }
}
