import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres, { type Sql } from 'postgres'
import { expect } from 'vitest'
import { startNodeEdge, type NodeEdge } from '../../../edge/platform/node.ts'
import { migrate } from '../../../relay/migrate.ts'
import { freePort } from '../../../scripts/free-port.ts'
import { edgeEnv } from '../../support/stack.ts'
import { mintToken } from '../../support/tokens.ts'
import { startProxy } from '../../support/proxy.ts'
import { RESULTS, sleep, spawnRelay, startChaosPostgres, until, type RelayProcess } from './cluster.ts'
import { report, sumTallies, tally, type Row } from './ledger.ts'
import { ChaosClient, startWriters, type WriterSpec } from './traffic.ts'
import { truth, wants } from './truth.ts'

/**
 * The chaos suite's harness (test/chaos/chaos.test.ts runs the faults): writers on three tenants, subscribers on several topics, and one fault after another. After
 * each fault, every subscriber must hold exactly the committed seqs of its tenant and topics, in order, once (or a
 * `reset` and then a complete tail). Everything runs against real parts: our own PostgreSQL (so that it can be
 * restarted), relays as child processes (so that they can be killed with SIGKILL), the Node edge. It runs twice:
 * with NOTIFY (RELAY_MODE=notify), and polling with `relay.notify = 'off'` on the database (RELAY_MODE=poll).
 */
export type Mode = 'notify' | 'poll'

export const TENANTS = ['t-a', 't-b', 't-c']
export const TOPIC_SETS: (string[] | undefined)[] = [undefined, ['orders'], ['users', 'audit']]
export const WRITERS: WriterSpec[] = [{ tenant: 't-a' }, { tenant: 't-a' }, { tenant: 't-b' }, { tenant: 't-c' }]
// CHAOS_EDGE_DOWN_MS shortens the outage while working on the suite. CI runs 30 s with NOTIFY, and 10 s when
// polling: the outage is the same code path in both modes (the deliverer's retries), so the second pass needs it
// to happen, not to last.
export const EDGE_DOWN_MS: Record<Mode, number> = {
  notify: Number(process.env.CHAOS_EDGE_DOWN_MS ?? 30_000),
  poll: Number(process.env.CHAOS_EDGE_DOWN_MS ?? 10_000),
}
export const SLOW_READER_MS = 10_000
export const RECONNECTING_CLIENTS = 1_000

let mode: Mode
/** LISTEN sessions a healthy deployment has: one with NOTIFY, none when polling. */
export const LISTENS: Record<Mode, number> = { notify: 1, poll: 0 }
let dir: string
let pg: Awaited<ReturnType<typeof startChaosPostgres>>
let url: string
let sql: Sql
let db: ReturnType<typeof truth>
let edge: NodeEdge
let edgePort: number
let proxy: Awaited<ReturnType<typeof startProxy>>
let leader: RelayProcess
const relays = new Set<RelayProcess>()
const tokens = new Map<string, string>()
let base: ChaosClient[] = []
const rows: Row[] = []
let maxListeners = 0
let sampling = true
let sampler: Promise<void> | undefined
let closing = false
const crashes: string[] = []

export const edgeSettings = () => edgeEnv({ PORT: String(edgePort), HEARTBEAT_MS: '5000', SUBSCRIBER_QUEUE_BYTES: String(256 * 1024) })

/** `npm run relay` by default; `cli/serve.ts` for `npm run serve`. */
export const relay = async (entry?: string, extra: Record<string, string> = {}) => {
  const r = await spawnRelay(
    {
      DATABASE_URL: url,
      EDGE_URL: proxy.url,
      RELAY_MODE: mode,
      RELAY_SWEEP_MS: '1000',
      // Exercise the prune query under load (every 12th sweep) without pruning anything the ledger still needs.
      RELAY_RETENTION_COUNT: '1000000',
      RELAY_RETENTION_AGE_S: '0',
      ...extra,
    },
    entry,
  )
  relays.add(r)
  void r.exited.then(async () => {
    relays.delete(r)
    if (r.intentional || closing) return
    // A crash we did not cause: restart it as systemd's Restart=on-failure would, and say so in the report.
    crashes.push(`relay ${r.pid} exited unexpectedly`)
    const next = await relay(entry, extra)
    if (leader === r) leader = next
  })
  return r
}

export const client = (tenant: string, topics: string[] | undefined, lastEventId?: number) =>
  new ChaosClient({ baseUrl: `http://127.0.0.1:${edgePort}`, token: tokens.get(tenant)!, tenant, topics, lastEventId })

/**
 * One fault: traffic before, the fault, traffic after, then the ledger. `inject` returns when the fault is over
 * (the moment recovery is measured from) and may return notes for the table.
 */
export const phase = async (
  fault: string,
  inject: () => Promise<string | void>,
  { clients = () => base, writers = WRITERS }: { clients?: () => ChaosClient[]; writers?: WriterSpec[] } = {},
) => {
  const lo = await db.heads()
  const w = startWriters(sql, writers)
  let notes: string | void
  let recoverMs = 0
  try {
    await sleep(1_000)
    notes = await inject()
    const faultEnd = Date.now()
    const h = await db.heads()
    await db.caughtUp(clients(), h, 90_000)
    recoverMs = Date.now() - faultEnd
    await sleep(1_000)
  } finally {
    await w.stop()
  }
  const hi = await db.heads()
  const subs = clients()
  await db.caughtUp(subs, hi, 60_000).catch(() => {}) // the ledger below says what is missing
  const events = new Map<string, { seq: number; topic: string }[]>()
  for (const t of TENANTS) events.set(t, await db.committed(t, lo[t]!, hi[t]!))
  const tallies = subs.map((c) => {
    const expected = events
      .get(c.o.tenant)!
      .filter((e) => wants(c, e))
      .map((e) => e.seq)
    return tally(c.received, c.resets, expected, Math.max(lo[c.o.tenant]!, c.from), hi[c.o.tenant]!)
  })
  const sum = sumTallies(tallies)
  const row: Row = {
    fault,
    committed: TENANTS.reduce((n, t) => n + hi[t]! - lo[t]!, 0),
    subscribers: subs.length,
    recoverMs,
    notes: [notes, w.stats.rolledBack ? `${w.stats.rolledBack} tx rolled back` : '', w.stats.errors ? `${w.stats.errors} tx failed` : '']
      .filter(Boolean)
      .join('; '),
    ...sum,
  }
  rows.push(row)
  console.log(`chaos: ${fault}: ${JSON.stringify(row)}${w.stats.lastError ? ` last writer error: ${w.stats.lastError}` : ''}`)
  await until(`${LISTENS[mode]} LISTEN sessions`, async () => (await db.listeners()) === LISTENS[mode], 15_000)
  expect({ fault, lost: sum.lost, duplicated: sum.duplicated, outOfOrder: sum.outOfOrder, foreign: sum.foreign }).toEqual({
    fault,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    foreign: 0,
  })
  expect(row.committed).toBeGreaterThan(0)
}

export const setUp = async (m: Mode) => {
  mode = m
  rows.length = 0
  crashes.length = 0
  maxListeners = 0
  sampling = true
  closing = false
  dir = mkdtempSync(join(tmpdir(), 'edge-relay-chaos-'))
  pg = await startChaosPostgres(dir)
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} })
  await admin`create database chaos`
  // How a database switches to poll mode: its sessions stop sending NOTIFY (writers connect after this).
  if (mode === 'poll') await admin`alter database chaos set relay.notify = 'off'`
  await admin.end()
  url = pg.url.replace(/\/postgres$/, '/chaos')
  sql = postgres(url, { max: 8, onnotice: () => {}, connect_timeout: 5, backoff: () => 0.1 })
  await migrate(sql)
  db = truth(sql, TENANTS)
  edgePort = await freePort()
  edge = await startNodeEdge(edgeSettings())
  proxy = await startProxy(edgePort)
  for (const t of TENANTS) tokens.set(t, await mintToken({ tenant: t }, { expiresIn: '2h' }))
  leader = await relay()
  base = TENANTS.flatMap((t) => TOPIC_SETS.map((topics) => client(t, topics, 0).start()))
  await until('subscribers connected', () => base.every((c) => c.connects > 0))
  sampler = (async () => {
    while (sampling) {
      maxListeners = Math.max(maxListeners, await db.listeners().catch(() => 0))
      await sleep(100)
    }
  })()
}

export const tearDown = async () => {
  closing = true
  sampling = false
  await sampler
  await Promise.all(base.map((c) => c.stop()))
  await Promise.all([...relays].map((r) => r.stop()))
  await proxy?.close()
  await edge?.close()
  await sql?.end({ timeout: 1 })
  await pg?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
  if (rows.length) {
    const md = report(rows, [
      `${TENANTS.length} tenants, ${WRITERS.length} writers (1–5 events a transaction, ~15 % rolled back)`,
      `${base.length} standing subscribers on ${TOPIC_SETS.length} topic sets`,
      `RELAY_MODE=${mode}; most LISTEN sessions seen at once: ${maxListeners}`,
      `relay crashes (restarted like systemd would): ${crashes.length ? crashes.join('; ') : 'none'}`,
    ])
    mkdirSync(RESULTS, { recursive: true })
    writeFileSync(`${RESULTS}${mode === 'notify' ? 'chaos' : 'chaos-poll'}.md`, md)
    console.log(`\n${md}`)
  }
}

/** The cluster's parts as the faults see them; a fault may replace the leader or the edge. */
export const chaos = {
  get mode() {
    return mode
  },
  get sql() {
    return sql
  },
  get db() {
    return db
  },
  get pg() {
    return pg
  },
  get proxy() {
    return proxy
  },
  get base() {
    return base
  },
  get tokens() {
    return tokens
  },
  /** The most LISTEN sessions the sampler saw at once. */
  get maxListeners() {
    return maxListeners
  },
  get leader() {
    return leader
  },
  set leader(r: RelayProcess) {
    leader = r
  },
  get edge() {
    return edge
  },
  set edge(e: NodeEdge) {
    edge = e
  },
}
