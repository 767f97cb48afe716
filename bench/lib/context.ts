import { SignJWT } from 'jose'
import type { BenchDb } from './db.ts'
import { startChild, type Child } from './proc.ts'
import { count, merge, newHist, quantile, type Hist } from './hist.ts'

export const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef0123'
export const RELAY_SECRET = 'bench-relay-secret-0123456789abcdef01'

export interface Options {
  quick: boolean
  repeat: number
  cpuProf: boolean
  only?: Set<string>
  /** Skip the baseline in the latency workloads (for before/after runs of our own changes). */
  oursOnly: boolean
  /** Skip the split shape (relay and edge in two processes) in the latency workloads. */
  noSplit: boolean
}

/** What every workload shares: the database, the long-lived client and writer processes, and progress output. */
export interface Ctx {
  opts: Options
  db: BenchDb
  workers: Child[]
  writer: Child
  progress: (msg: string) => void
}

export const summary = (h: Hist) => ({
  p50: round(quantile(h, 0.5)),
  p95: round(quantile(h, 0.95)),
  p99: round(quantile(h, 0.99)),
  samples: count(h),
})

/** The median of the numbers among `xs` (null when there are none). */
export const median = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b)
  return v.length ? v[Math.floor((v.length - 1) / 2)]! + (v.length % 2 ? 0 : (v[v.length / 2]! - v[v.length / 2 - 1]!) / 2) : null
}

export const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null)

const tokens = new Map<string, string>()
export const token = async (tenant: string) => {
  let t = tokens.get(tenant)
  if (!t) {
    t = await new SignJWT({ tenant })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('2h')
      .sign(new TextEncoder().encode(JWT_SECRET))
    tokens.set(tenant, t)
  }
  return t
}

export type System = 'ours' | 'baseline' | 'raw'

/** The relay's RELAY_MODE; in `poll`, the bench's writers also publish with relay.notify = 'off'. */
export type RelayMode = 'notify' | 'poll'

/** SSE request paths (and headers) for `perTenant` clients on each tenant, as each system serves them. */
export const connections = async (system: System, tenants: string[], perTenant: number) => {
  const out: { path: string; headers: Record<string, string> }[] = []
  for (let j = 0; j < perTenant; j++)
    for (const t of tenants) {
      if (system === 'ours') out.push({ path: `/v1/tenants/${t}/events`, headers: { authorization: `Bearer ${await token(t)}` } })
      else if (system === 'baseline') out.push({ path: `/events/${t}`, headers: {} })
      else out.push({ path: `/events`, headers: {} })
    }
  return out
}

/** Spreads connections over the client processes and opens them all (`dechunk`: see children/clients.ts). */
export const connectAll = async (
  ctx: Ctx,
  base: string,
  conns: { path: string; headers: Record<string, string> }[],
  { dechunk = false } = {},
) => {
  const shares = ctx.workers.map((_, i) => conns.filter((__, j) => j % ctx.workers.length === i))
  const replies = await Promise.all(
    ctx.workers.map((w, i) => w.call<{ ok: number; failed: number }>('connect', { base, conns: shares[i], dechunk }, 300_000)),
  )
  const ok = replies.reduce((a, r) => a + r.ok, 0)
  if (ok < conns.length) throw new Error(`only ${ok} of ${conns.length} SSE connections opened`)
}

export const closeAll = (ctx: Ctx) => Promise.all(ctx.workers.map((w) => w.call('close')))

/** Counts events stamped from `start` on and parsed by `end` (both on the shared monotonic clock, ms). */
export const openWindow = (ctx: Ctx, start: number, end = 1e18) => Promise.all(ctx.workers.map((w) => w.call('window', { start, end })))

export const collect = async (ctx: Ctx) => {
  const stats = await Promise.all(ctx.workers.map((w) => w.call<{ hist: Hist; received: number; frames: number }>('stats')))
  const hist = newHist()
  for (const s of stats) merge(hist, s.hist)
  return { hist, received: stats.reduce((a, s) => a + s.received, 0), frames: stats.reduce((a, s) => a + s.frames, 0) }
}

/** Waits until `expected` events arrived, or no event at all came for `quietMs`, or `maxMs` passed. */
export const settle = async (ctx: Ctx, expected: number, maxMs: number, quietMs = 1000) => {
  const t0 = Date.now()
  let last = -1
  let lastChange = Date.now()
  for (;;) {
    const { received, frames } = await collect(ctx)
    if (received >= expected || Date.now() - t0 > maxMs) return
    if (frames !== last) (last = frames), (lastChange = Date.now())
    else if (Date.now() - lastChange > quietMs) return
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** CPU time (user + system, ms) a child has used so far. */
export const cpuMs = async (c: Child | undefined) => (c ? (await c.call<{ cpuMs: number }>('cpu')).cpuMs : 0)

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Our stack. Default: the relay and the Node edge in one process (`npm run serve`). `split`: the edge and the relay
 * in two processes, the relay posting signed batches over HTTP (`npm run relay` + `npm run edge`: the shape of a
 * Workers deployment, or of several Node edges). `relay: false`: the edge alone.
 */
export const startOurs = async (ctx: Ctx, { relay = true, split = false, gc = false, relayMode = 'notify' as RelayMode } = {}) => {
  const profile = ctx.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', 'bench/results/prof'] : []
  const inProcess = relay && !split
  const edge = await startChild(
    'children/edge.ts',
    {
      EDGE_JWT_SECRET: JWT_SECRET,
      RELAY_SECRET,
      ...(inProcess ? { BENCH_WITH_RELAY: '1', DATABASE_URL: ctx.db.url, RELAY_MODE: relayMode } : {}),
    },
    [...(gc ? ['--expose-gc'] : []), ...profile],
  )
  const url = edge.info.url as string
  const r =
    relay && split
      ? await startChild('children/relay.ts', { DATABASE_URL: ctx.db.url, EDGE_URL: url, RELAY_SECRET, RELAY_MODE: relayMode }, profile)
      : undefined
  return { url, edge, relay: r, stop: async () => (await r?.stop(), await edge.stop()) }
}
