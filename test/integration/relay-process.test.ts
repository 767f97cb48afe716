import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/free-port.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { edgeEnv } from '../support/stack.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { openStream } from '../support/sse-client.ts'
import { JWT_SECRET, mintToken, RELAY_SECRET } from '../support/tokens.ts'

const root = resolve(import.meta.dirname, '../..')

/** An entry point as a real child process (tsx), with env. */
const run = (entry: string) => (env: Record<string, string>) => {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  return { child, exited, output: () => output }
}
/** `npm run relay`: the relay alone. */
const runRelay = run('relay/main.ts')
/** `npm run serve`: the relay and the Node edge in one process. */
const runServe = run('cli/serve.ts')

let db: TestDb
let edge: NodeEdge
beforeAll(async () => {
  db = await freshDatabase()
  edge = await startNodeEdge(edgeEnv())
})
afterAll(async () => {
  await edge?.close()
  await db?.drop()
})

/** Polls until `url` answers 200 (or gives up after ~10 s) and returns the last response. */
const healthy = async (url: string) => {
  let health: Response | undefined
  for (let i = 0; i < 200 && !health?.ok; i++) {
    health = await fetch(url).catch(() => undefined)
    if (!health?.ok) await new Promise((res) => setTimeout(res, 50))
  }
  return health
}

describe('npm run relay', () => {
  it('refuses bad configuration with a message naming each bad variable, exit 1', async () => {
    const r = runRelay({ DATABASE_URL: 'mysql://nope', EDGE_URL: 'ftp://x', RELAY_SECRET: 'short', RELAY_PORT: 'abc' })
    expect(await r.exited).toBe(1)
    for (const name of ['DATABASE_URL', 'EDGE_URL', 'RELAY_SECRET', 'RELAY_PORT']) expect(r.output()).toContain(name)
    // A person reads plain lines first, one per variable; the JSON log line with the same problems comes after.
    const lines = r.output().trim().split('\n')
    expect(lines.slice(0, 4).sort()).toEqual([
      'relay: invalid configuration: DATABASE_URL: must be a postgres:// URL',
      'relay: invalid configuration: EDGE_URL: every entry must be an http(s) URL',
      'relay: invalid configuration: RELAY_PORT: must be a whole number',
      'relay: invalid configuration: RELAY_SECRET: must be at least 16 characters',
    ])
    expect(JSON.parse(lines[4]!)).toMatchObject({ level: 'error', msg: 'relay failed to start', problems: expect.any(Array) })
    expect(lines).toHaveLength(5)
  })

  it('serves /healthz, delivers, and exits 0 on SIGTERM after closing its connections', async () => {
    const port = await freePort()
    const r = runRelay({ DATABASE_URL: db.url, EDGE_URL: edge.url, RELAY_SECRET, RELAY_PORT: String(port) })
    const health = await healthy(`http://127.0.0.1:${port}/healthz`)
    expect(health?.status).toBe(200)
    expect(await health!.json()).toMatchObject({ ok: true, listening: true })
    const [row] = await db.sql<{ seq: string }[]>`select relay.publish('proc', 't', '{"x":1}') as seq`
    for (let i = 0; i < 200 && edge.rooms.room('proc').head < Number(row!.seq); i++) await new Promise((res) => setTimeout(res, 25))
    expect(edge.rooms.room('proc').head).toBe(1)
    r.child.kill('SIGTERM')
    expect(await r.exited).toBe(0)
    expect(r.output()).toContain('relay stopped')
    // The server notices closed sockets a moment after the client exits.
    let left = -1
    for (let i = 0; i < 100 && left !== 0; i++) {
      const [row] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name like 'edge-relay%'`
      left = row!.n
      if (left) await new Promise((res) => setTimeout(res, 50))
    }
    expect(left).toBe(0)
  })
})

describe('npm run serve (relay and Node edge in one process)', () => {
  it('refuses bad configuration naming each variable, and needs no EDGE_URL', async () => {
    const r = runServe({ DATABASE_URL: db.url, RELAY_SECRET: 'short', PORT: 'abc', RELAY_LOCAL_EDGE: 'two words' })
    expect(await r.exited).toBe(1)
    for (const name of ['RELAY_SECRET', 'RELAY_LOCAL_EDGE', 'PORT']) expect(r.output()).toContain(name)
    expect(r.output().match(/^relay: .*RELAY_SECRET: must be/gm)).toHaveLength(1) // named once, though both parts read it
    const same = runServe({
      DATABASE_URL: db.url,
      RELAY_SECRET,
      EDGE_JWT_SECRET: JWT_SECRET,
      EDGE_URL: edge.url,
      RELAY_LOCAL_EDGE: edge.url,
    })
    expect(await same.exited).toBe(1)
    expect(same.output()).toContain('RELAY_LOCAL_EDGE names this edge: it must not also be in EDGE_URL')
    expect(r.output()).not.toContain('EDGE_URL')
    expect(r.output()).not.toContain('listening') // nothing started
  })

  it('streams committed events from its own edge, posts to the edges in EDGE_URL too, and exits 0 on SIGTERM', async () => {
    const [port, relayPort] = [await freePort(), await freePort()]
    const env = { DATABASE_URL: db.url, EDGE_URL: edge.url, RELAY_SECRET, EDGE_JWT_SECRET: JWT_SECRET, HOST: '127.0.0.1' }
    const r = runServe({ ...env, PORT: String(port), RELAY_PORT: String(relayPort), RELAY_LOCAL_EDGE: 'serve-test' })
    const health = await healthy(`http://127.0.0.1:${relayPort}/healthz`)
    expect(await health!.json()).toMatchObject({ ok: true, listening: true, edges: [{ url: edge.url }, { url: 'serve-test' }] })
    const token = await mintToken({ tenant: 'served' })
    const stream = await openStream(`http://127.0.0.1:${port}/v1/tenants/served/events`, { authorization: `Bearer ${token}` })
    expect(stream.status).toBe(200)
    for (let i = 1; i <= 3; i++) await db.sql`select relay.publish('served', 'orders', ${db.sql.json({ n: i })})`
    await stream.waitFor((m) => m.filter((x) => x.id).length >= 3)
    // The data line is PostgreSQL's own text for the stored jsonb, passed through unparsed.
    expect(stream.messages.filter((m) => m.id).map((m) => [m.id, m.event, m.data])).toEqual([
      ['1', 'orders', '{"n": 1}'],
      ['2', 'orders', '{"n": 2}'],
      ['3', 'orders', '{"n": 3}'],
    ])
    // The remote edge got the same batches over HTTP, under its own cursor.
    for (let i = 0; i < 200 && edge.rooms.room('served').head < 3; i++) await new Promise((res) => setTimeout(res, 25))
    expect(edge.rooms.room('served').head).toBe(3)
    r.child.kill('SIGTERM')
    expect(await r.exited).toBe(0)
    expect(r.output()).toContain('relay stopped')
    await stream.ended // the edge ended the stream on its way out
    const cursors = await db.sql<{ edge: string; delivered: string }[]>`
      select edge, delivered from relay.cursors where tenant = 'served' order by edge`
    expect(cursors.map((c) => [c.edge, Number(c.delivered)])).toEqual([
      [edge.url, 3],
      ['serve-test', 3],
    ])
  })
})

describe('a port already in use', () => {
  /** A port this test holds, as another program would. */
  const held = async () => {
    const server = createServer()
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    return { port: (server.address() as AddressInfo).port, close: () => new Promise((done) => server.close(done)) }
  }
  const base = { DATABASE_URL: '', RELAY_SECRET, EDGE_JWT_SECRET: JWT_SECRET, HOST: '127.0.0.1', RELAY_HOST: '127.0.0.1' }

  it.each([
    ['npm run relay', runRelay, 'RELAY_PORT'],
    ['npm run serve', runServe, 'PORT'],
    ['npm run serve', runServe, 'RELAY_PORT'],
    ['npm run edge', run('edge/platform/node.ts'), 'PORT'],
  ] as const)('%s: one line naming the port and %s, exit 1, no stack trace', async (_, start, variable) => {
    const taken = await held()
    try {
      const free = String(await freePort())
      const ports = { PORT: free, RELAY_PORT: free, [variable]: String(taken.port) }
      const r = start({ ...base, DATABASE_URL: db.url, EDGE_URL: edge.url, ...ports })
      expect(await r.exited).toBe(1)
      const plain = r
        .output()
        .split('\n')
        .filter((l) => l && !l.startsWith('{'))
      expect(plain).toEqual([
        expect.stringMatching(
          new RegExp(
            `^(relay|edge): port ${taken.port} on 127\\.0\\.0\\.1 is already in use .*set ${variable} to a free port \\(${variable}=0 picks one\\)$`,
          ),
        ),
      ])
      expect(r.output()).not.toMatch(/EADDRINUSE| {4}at /)
    } finally {
      await taken.close()
    }
  })
})
