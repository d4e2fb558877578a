import { afterEach, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createGzip, gunzipSync, gzipSync } from 'node:zlib'
import { SECRET_PLACEHOLDER, withoutSecrets } from '../src/ops/archive'
import { startFakeLlm, type FakeLlm } from './fakes/llm'
import { startWebhookReceiver, type FakeReceiver } from './fakes/webhook-receiver'
import { configPathOf, freePort, homeWithConfig, runCli, startGateway, writeConfig, type RunningGateway } from './helpers/gateway'
import { json, postJson } from './helpers/http'
import { waitFor } from './helpers/wait'

const SECRET = 'a-webhook-secret-for-backups'
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Setup {
  home: string
  token: string
  apiKey: string
  llm: FakeLlm
  receiver: FakeReceiver
  config: Record<string, any>
}

/** A HOME whose config has an API token, a provider API key (the fake LLM) and a webhook channel on a receiver. */
function setup(extra: Record<string, unknown> = {}): Setup {
  const llm = startFakeLlm()
  const receiver = startWebhookReceiver(SECRET)
  cleanups.push(() => llm.stop(), () => receiver.stop())
  const token = `tok-${randomBytes(12).toString('hex')}`
  const apiKey = `sk-${randomBytes(12).toString('hex')}`
  const config = {
    gateway: { auth: { token }, shutdownTimeoutMs: 300 },
    agent: { model: 'fake/echo', maxRetries: 0 },
    providers: { fake: { type: 'openai-compatible', baseURL: `${llm.url}/v1`, apiKey } },
    // Retried for minutes: a reply to a receiver that is down keeps its chat busy, and the chat's next message queued.
    channels: { myapp: { type: 'webhook', url: receiver.url, secret: SECRET, retry: { attempts: 20, baseDelayMs: 30_000 } } },
    ...extra,
  }
  const home = homeWithConfig(config)
  return { home, token, apiKey, llm, receiver, config }
}

async function start(s: Setup): Promise<RunningGateway> {
  const gateway = await startGateway({ home: s.home })
  cleanups.push(async () => {
    if (gateway.proc.exitCode === null) await gateway.stop()
  })
  return gateway
}

const api = (gateway: RunningGateway, s: Setup) => ({
  get: async (path: string) => json(await fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } })),
  post: (path: string, body: unknown) => postJson(`${gateway.url}${path}`, body, { authorization: `Bearer ${s.token}` }),
})

const dataDir = (home: string) => join(home, '.xopcbot')
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
/** The data directory's files (recursively, with their digests): what "nothing changed" compares. */
function snapshotOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    if (entry.isFile() && !path.includes(`${join(dir, 'logs')}`)) out[path.slice(dir.length)] = sha(path)
    else if (entry.isDirectory()) out[`${path.slice(dir.length)}/`] = 'dir'
  }
  return out
}

async function entriesOf(file: string): Promise<Map<string, Uint8Array>> {
  const files = await new Bun.Archive(readFileSync(file)).files()
  const out = new Map<string, Uint8Array>()
  for (const [name, entry] of files) out.set(name, new Uint8Array(await entry.arrayBuffer()))
  return out
}

describe('backup and restore', () => {
  test('online backup with writes going on, secrets left out; restore brings back sessions, cron jobs and queued messages', async () => {
    const s = setup()
    let gateway = await start(s)
    let client = api(gateway, s)

    // Two conversations, a cron job, and a message queued behind a reply its receiver does not take.
    for (const session of ['alpha', 'beta']) expect((await client.post('/api/agent', { message: `hello ${session}`, session })).status).toBe(200)
    const job = (await json(await client.post('/api/cron/create', { name: 'nightly', schedule: '0 3 * * *', message: 'good night' }))).job
    s.receiver.statuses.push(...Array(50).fill(503))
    const first = (await json(await client.post('/api/message', { channel: 'myapp', chat_id: 'q', content: 'first' }))).message_id
    await waitFor(() => s.receiver.received.length > 0, { what: 'the first delivery attempt' })
    const queued = (await json(await client.post('/api/message', { channel: 'myapp', chat_id: 'q', content: 'second' }))).message_id
    expect((await client.get(`/api/message/${queued}`)).message.state).toBe('queued')

    // Backups while turns are being written.
    let writing = true
    const writes: number[] = []
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; writing; i++) writes.push((await client.post('/api/agent', { message: `load ${i}`, session: `load-${w}` })).status)
    })
    const plain = await runCli(['backup', '--json'], { home: s.home })
    const full = await runCli(['backup', '--include-secrets', '--out', join(s.home, 'full.tar.gz')], { home: s.home })
    writing = false
    await Promise.all(writers)
    expect(plain.code).toBe(0)
    expect(full.code).toBe(0)
    expect(writes.length).toBeGreaterThan(0)
    expect(writes.every((status) => status === 200)).toBe(true)

    const made = JSON.parse(plain.stdout)
    expect(made.path).toMatch(new RegExp(`^${dataDir(s.home)}/backups/xopcbot-\\d{8}T\\d{6}Z\\.tar\\.gz$`))
    expect(made.size).toBe(statSync(made.path).size)
    expect(statSync(made.path).mode & 0o777).toBe(0o600)
    expect(statSync(join(dataDir(s.home), 'backups')).mode & 0o777).toBe(0o700)
    expect(full.stdout).toContain(`Backup written: ${join(s.home, 'full.tar.gz')} (`)

    // The archive: manifest, checksums, a sound database snapshot — and no secrets unless asked for.
    const entries = await entriesOf(made.path)
    expect([...entries.keys()].sort()).toEqual(['SHA256SUMS', 'config.json', 'manifest.json', 'xopcbot.db'])
    const manifest = JSON.parse(new TextDecoder().decode(entries.get('manifest.json')))
    expect(manifest).toMatchObject({ format: 'xopcbot-backup', format_version: 1, secrets_included: false, schema_version: expect.any(Number), hostname: expect.any(String) })
    expect(manifest.secrets_removed).toEqual(expect.arrayContaining(['gateway.auth.token', 'providers.fake.apiKey', 'channels.myapp.secret']))
    const sums = new TextDecoder().decode(entries.get('SHA256SUMS'))
    for (const file of manifest.files) {
      const digest = createHash('sha256').update(entries.get(file.name)!).digest('hex')
      expect(file.sha256).toBe(digest)
      expect(file.size).toBe(entries.get(file.name)!.length)
      expect(sums).toContain(`${digest}  ${file.name}`)
    }
    const snapshot = join(mkdtempSync(join(tmpdir(), 'xopcbot-snap-')), 'x.db')
    writeFileSync(snapshot, entries.get('xopcbot.db')!)
    const db = new Database(snapshot, { readonly: true })
    expect((db.query('PRAGMA integrity_check').get() as any).integrity_check).toBe('ok')
    expect((db.query(`SELECT COUNT(*) AS n FROM sessions WHERE key IN ('alpha', 'beta')`).get() as any).n).toBe(2)
    db.close()
    const plainTar = gunzipSync(readFileSync(made.path)).toString('latin1')
    const fullTar = gunzipSync(readFileSync(join(s.home, 'full.tar.gz'))).toString('latin1')
    for (const secret of [s.token, s.apiKey, SECRET]) {
      expect(plainTar.includes(secret)).toBe(false)
      expect(fullTar.includes(secret)).toBe(true)
    }

    // Not while the gateway runs on that config.
    const refused = await runCli(['restore', made.path], { home: s.home })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`A gateway is running on ${configPathOf(s.home)} (pid ${gateway.proc.pid}`)
    expect(existsSync(join(dataDir(s.home), 'xopcbot.db'))).toBe(true)
    expect(readdirSync(join(dataDir(s.home), 'backups')).some((name) => name.startsWith('before-restore'))).toBe(false)
    expect(await gateway.stop()).toBe(0)

    // A damaged archive, or one whose database does not match its checksum, is refused and nothing changes.
    const before = snapshotOf(dataDir(s.home))
    const flipped = join(s.home, 'flipped.tar.gz')
    const bytes = readFileSync(made.path)
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff
    writeFileSync(flipped, bytes)
    const tampered = join(s.home, 'tampered.tar.gz')
    const changed = new Map(entries)
    const dbBytes = changed.get('xopcbot.db')!.slice()
    dbBytes[dbBytes.length - 1]! ^= 0x01
    changed.set('xopcbot.db', dbBytes)
    await Bun.Archive.write(tampered, Object.fromEntries(changed), { compress: 'gzip' })
    for (const [file, why] of [
      [flipped, 'it cannot be read as a tar.gz archive'],
      [tampered, 'the checksum of xopcbot.db does not match'],
    ] as const) {
      const result = await runCli(['restore', file], { home: s.home })
      expect(result.code).toBe(65)
      expect(result.stderr).toContain(`${file} is not a usable xopcbot backup: ${why}`)
      expect(result.stderr).toContain('Nothing was changed.')
      expect(snapshotOf(dataDir(s.home))).toEqual(before)
    }

    // Everything gone: the database and the config. The full backup brings both back.
    for (const name of ['xopcbot.db', 'xopcbot.db-wal', 'xopcbot.db-shm', 'config.json']) rmSync(join(dataDir(s.home), name), { force: true })
    const restored = await runCli(['restore', join(s.home, 'full.tar.gz')], { home: s.home })
    expect(restored.stderr).toBe('')
    expect(restored.code).toBe(0)
    expect(restored.stdout).toContain(`Config: restored to ${configPathOf(s.home)}`)
    expect(statSync(join(dataDir(s.home), 'xopcbot.db')).mode & 0o777).toBe(0o600)

    s.receiver.statuses.length = 0
    gateway = await start(s)
    client = api(gateway, s)
    const sessions = (await client.get('/api/sessions')).sessions
    expect(sessions.find((x: any) => x.key === 'alpha')).toMatchObject({ message_count: 2 })
    expect(sessions.find((x: any) => x.key === 'beta')).toMatchObject({ message_count: 2 })
    expect((await client.get('/api/cron')).jobs).toEqual([expect.objectContaining({ id: job.id, name: 'nightly', schedule: '0 3 * * *' })])
    // The queued message is there and is now answered and delivered.
    const delivered = await waitFor(async () => {
      const message = (await client.get(`/api/message/${queued}`)).message
      return message.state === 'delivered' ? message : null
    }, { what: 'the queued message to be delivered after the restore' })
    expect(delivered).toMatchObject({ channel: 'myapp', chat_id: 'q', reply: 'echo: second' })
    expect(s.receiver.received.some((d) => d.body.data.content === 'echo: second')).toBe(true)
    // The reply that was being delivered when the backup was taken is not sent again.
    expect((await client.get(`/api/message/${first}`)).message.state).toBe('failed')
  }, 30_000)

  test('--config-too over a config with secrets keeps them; a secret the current config lacks stays a placeholder', async () => {
    const s = setup({ mcp: { servers: { files: { command: 'true', env: { API_KEY: 'mcp-key-value-1', ROOT: '${NOTES_DIR}' } } } } })
    // No gateway needed: `pairing list` creates the database, and a backup of a stopped gateway's is the same.
    expect((await runCli(['pairing', 'list'], { home: s.home })).code).toBe(0)
    const made = JSON.parse((await runCli(['backup', '--json'], { home: s.home })).stdout)
    const written = JSON.parse(new TextDecoder().decode((await entriesOf(made.path)).get('config.json')))
    // `${VAR}` references are not secrets.
    expect(written.mcp.servers.files.env).toEqual({ API_KEY: '${secret-not-in-backup}', ROOT: '${NOTES_DIR}' })

    // The current config lost its MCP server but still has the token and API key.
    const { mcp: _dropped, ...rest } = s.config
    const current = { ...rest, agent: { ...s.config.agent, historyLimit: 7 } }
    writeConfig(s.home, current)
    const without = await runCli(['restore', made.path], { home: s.home })
    expect(without.code).toBe(0)
    expect(without.stdout).toContain('is kept (--config-too replaces it')
    expect(JSON.parse(readFileSync(configPathOf(s.home), 'utf8'))).toEqual(current)

    const result = await runCli(['restore', made.path, '--config-too', '--json'], { home: s.home })
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report).toMatchObject({ config: 'replaced', secrets_missing: ['mcp.servers.files.env.API_KEY'] })
    expect(report.secrets_filled).toEqual(expect.arrayContaining(['gateway.auth.token', 'providers.fake.apiKey', 'channels.myapp.secret']))
    const now = JSON.parse(readFileSync(configPathOf(s.home), 'utf8'))
    expect(now.gateway.auth.token).toBe(s.token)
    expect(now.providers.fake.apiKey).toBe(s.apiKey)
    expect(now.agent.historyLimit).toBeUndefined()
    expect(now.mcp.servers.files.env.API_KEY).toBe('${secret-not-in-backup}')
    expect(JSON.parse(readFileSync(join(report.moved_aside, 'config.json'), 'utf8'))).toEqual(current)
    expect(statSync(configPathOf(s.home)).mode & 0o777).toBe(0o600)
    // A placeholder is never taken as a value: the gateway names the key instead of starting with it.
    const run = await runCli(['gateway', '--port', '1'], { home: s.home })
    expect(run.code).toBe(78)
    expect(run.stderr).toContain('mcp.servers.files.env.API_KEY')
  }, 20_000)

  test('scheduled backups: written on the schedule, logged, pruned to backup.keep', async () => {
    const s = setup({ backup: { schedule: '* * * * * *', keep: 2, dir: 'snapshots' } })
    const gateway = await start(s)
    const dir = join(dataDir(s.home), 'snapshots')
    const scheduled = () => (existsSync(dir) ? readdirSync(dir).filter((name) => /^xopcbot-scheduled-\d{8}T\d{6}Z(-\d+)?\.tar\.gz$/.test(name)) : [])
    const written = () => gateway.output().match(/backup written/g)?.length ?? 0
    await waitFor(() => written() >= 3 && gateway.output().includes('old backups deleted') && scheduled().length === 2, { what: 'three scheduled backups, pruned to two', timeoutMs: 10_000 })
    expect(gateway.output()).toMatch(new RegExp(`backup written path=${dir}/xopcbot-scheduled-\\d{8}T\\d{6}Z\\.tar\\.gz size=\\d+ ms=\\d+`))
    expect(await gateway.stop()).toBe(0)
    const kept = scheduled()
    expect(kept.length).toBeGreaterThanOrEqual(1)
    expect(kept.length).toBeLessThanOrEqual(2)
    expect(readdirSync(dir).filter((name) => name.endsWith('.partial'))).toEqual([])
    const entries = await entriesOf(join(dir, kept.sort().at(-1)!))
    expect(JSON.parse(new TextDecoder().decode(entries.get('manifest.json'))).secrets_included).toBe(false)
  }, 20_000)

  test('a gateway does not start while a restore runs in its data directory; the leftovers of a killed restore are a warning', async () => {
    const s = setup()
    mkdirSync(dataDir(s.home), { recursive: true })
    // This test's own process stands for a restore that is still running.
    const running = join(dataDir(s.home), `.restore-${process.pid}-20261130T000000Z`)
    mkdirSync(running)
    const refused = await runCli(['gateway', '--port', String(await freePort()), '--host', '127.0.0.1'], { home: s.home })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`A restore is in progress in ${dataDir(s.home)} (xopcbot restore, pid ${process.pid})`)
    rmSync(running, { recursive: true })
    // A pid that no process has (beyond the kernel's pid_max): a restore that was killed.
    const left = join(dataDir(s.home), '.restore-99999999-20261130T000000Z')
    mkdirSync(left)
    const gateway = await start(s)
    expect(gateway.output()).toContain('an interrupted restore left its files here')
    expect(gateway.output()).toContain(left)
    expect(await gateway.stop()).toBe(0)
  })

  test('a backup.schedule that is not a cron expression is a config error naming the key', async () => {
    const s = setup({ backup: { schedule: 'every day', keep: 0 } })
    const result = await runCli(['backup'], { home: s.home })
    expect(result.code).toBe(78)
    expect(result.stderr).toContain('backup.schedule: must be a cron expression with 5 or 6 fields')
    expect(result.stderr).toContain('backup.keep: must be at least 1')
  })
})

describe('secrets in an archived config', () => {
  test('secret values are replaced wherever they are; references to the environment stay', () => {
    const P = SECRET_PLACEHOLDER
    const raw = {
      gateway: { port: 1, auth: { token: 'literal-token' } },
      providers: { a: { apiKey: '${OPENAI_KEY}', headers: { 'X-Org': 'org-1', Authorization: 'Bearer ${ORG_TOKEN}' } } },
      channels: { tg: { token: 'sk${A}', webhookSecret: 'user:${PASS}', secret: '$${NOT_A_REF}' } },
      mcp: { servers: { s: { url: 'https://x', headers: { Cookie: ['a', '${C}'] } } } },
      agent: { budget: { dailyTokens: 5 }, systemPrompt: 'keep ${ME}' },
    }
    const { config, removed } = withoutSecrets(raw)
    expect(config).toEqual({
      gateway: { port: 1, auth: { token: P } },
      providers: { a: { apiKey: '${OPENAI_KEY}', headers: { 'X-Org': P, Authorization: 'Bearer ${ORG_TOKEN}' } } },
      channels: { tg: { token: P, webhookSecret: P, secret: P } },
      mcp: { servers: { s: { url: 'https://x', headers: { Cookie: [P, '${C}'] } } } },
      agent: { budget: { dailyTokens: 5 }, systemPrompt: 'keep ${ME}' },
    })
    expect(removed).toEqual(['gateway.auth.token', 'providers.a.headers.X-Org', 'channels.tg.token', 'channels.tg.webhookSecret', 'channels.tg.secret', 'mcp.servers.s.headers.Cookie[0]'])
  })
})

/** A ustar header block: what a hostile archive can say that Bun.Archive.write would not (`..`, absolute names, links). */
function tarHeader(name: string, size: number, type: '0' | '1' | '2' = '0', link = ''): Uint8Array {
  const block = new Uint8Array(512)
  const put = (text: string, at: number) => block.set(new TextEncoder().encode(text), at)
  put(name, 0)
  put('0000644\0', 100)
  put('0000000\0', 108)
  put('0000000\0', 116)
  put(size.toString(8).padStart(11, '0') + '\0', 124)
  put('00000000000\0', 136)
  put('        ', 148)
  put(type, 156)
  put(link, 157)
  put('ustar\0' + '00', 257)
  put(block.reduce((sum, byte) => sum + byte, 0).toString(8).padStart(6, '0') + '\0 ', 148)
  return block
}

/** A tar (not compressed) of `entries`, in order: duplicates and all. */
function tarOf(entries: { name: string; data?: Uint8Array; type?: '0' | '1' | '2'; link?: string }[]): Uint8Array {
  const parts: Uint8Array[] = []
  for (const { name, data = new Uint8Array(), type = '0', link = '' } of entries) {
    parts.push(tarHeader(name, data.length, type, link), data, new Uint8Array((512 - (data.length % 512)) % 512))
  }
  parts.push(new Uint8Array(1024))
  return Buffer.concat(parts)
}

describe('restore of a hostile archive', () => {
  test('entries with .. or absolute names, links, a manifest naming a file that is not there or holding control characters, and a gzip bomb are refused; nothing is written anywhere', async () => {
    const home = homeWithConfig({ gateway: { auth: { token: 'restore-hostile-token' } } })
    cleanups.push(() => rmSync(home, { recursive: true, force: true }))
    expect((await runCli(['pairing', 'list'], { home })).code).toBe(0)
    const made = JSON.parse((await runCli(['backup', '--json'], { home })).stdout)
    const legit = [...(await entriesOf(made.path))].map(([name, data]) => ({ name, data }))
    const outside = mkdtempSync(join(tmpdir(), 'xopcbot-outside-'))
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }))
    const before = snapshotOf(dataDir(home))

    const cases: [string, Uint8Array, string][] = [
      ['dotdot', tarOf([...legit, { name: '../../../evil', data: new TextEncoder().encode('x') }]), 'it holds "../../../evil", which its manifest does not list'],
      ['absolute', tarOf([...legit, { name: join(outside, 'abs'), data: new TextEncoder().encode('x') }]), `it holds ${JSON.stringify(join(outside, 'abs'))}`],
      ['symlink', tarOf([...legit.filter((e) => e.name !== 'xopcbot.db'), { name: 'xopcbot.db', type: '2', link: '/etc/passwd' }]), 'xopcbot.db is missing'],
      ['hardlink', tarOf([...legit.filter((e) => e.name !== 'xopcbot.db'), { name: 'xopcbot.db', type: '1', link: 'manifest.json' }]), 'xopcbot.db is missing'],
      ['missing', tarOf(legit.filter((e) => e.name !== 'xopcbot.db')), 'xopcbot.db is missing'],
      // What restore prints from the manifest must not carry terminal escape sequences.
      ['escapes', tarOf(legit.map((e) => (e.name === 'manifest.json' ? { name: e.name, data: new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(e.data)), hostname: 'host\u001b]0;pwned\u0007' })) } : e))), 'its manifest.json is not an xopcbot backup manifest (hostname: must not hold control characters)'],
    ]
    for (const [label, tar, why] of cases) {
      const file = join(home, `${label}.tar.gz`)
      writeFileSync(file, gzipSync(tar))
      const result = await runCli(['restore', file], { home })
      expect(`${label}: ${result.stderr}`).toContain(`${file} is not a usable xopcbot backup: ${why}`)
      expect(result.code).toBe(65)
    }

    // A few MB that unpack to over 512 MiB: refused without unpacking it all into memory.
    const bomb = join(home, 'bomb.tar.gz')
    const size = 600 * 1024 * 1024
    const gzip = createGzip({ level: 9 })
    const written = new Promise((resolve, reject) => gzip.pipe(createWriteStream(bomb)).on('finish', resolve).on('error', reject))
    gzip.write(tarHeader('xopcbot.db', size))
    const zeros = new Uint8Array(1024 * 1024)
    for (let i = 0; i < size / zeros.length; i++) if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve))
    gzip.end()
    await written
    expect(statSync(bomb).size).toBeLessThan(size / 200)
    const result = await runCli(['restore', bomb], { home })
    expect(result.stderr).toContain(`${bomb} is not a usable xopcbot backup: it unpacks to more than ${512 * 1024 * 1024} bytes`)
    expect(result.code).toBe(65)

    expect(snapshotOf(dataDir(home))).toEqual(before)
    expect(readdirSync(outside)).toEqual([])
    expect(existsSync(join(home, '..', '..', 'evil'))).toBe(false)
  }, 60_000)
})

describe('backup --out', () => {
  test('never deletes what is at <out>.partial: refused with the path, the folder kept', async () => {
    const home = homeWithConfig({ gateway: { auth: { token: 'backup-out-token' } } })
    cleanups.push(() => rmSync(home, { recursive: true, force: true }))
    expect((await runCli(['pairing', 'list'], { home })).code).toBe(0)
    const out = join(home, 'mine')
    const theirs = join(`${out}.partial`, 'notes.txt')
    mkdirSync(dirname(theirs))
    writeFileSync(theirs, 'not ours to delete')
    const result = await runCli(['backup', '--out', out], { home })
    expect(result.stderr).toContain(`${out}.partial already exists`)
    expect(result.code).toBe(1)
    expect(readFileSync(theirs, 'utf8')).toBe('not ours to delete')
    expect(existsSync(out)).toBe(false)
  })
})
