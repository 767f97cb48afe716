import { nowMs, type Hist } from '../lib/hist.ts'
import type { Child } from '../lib/proc.ts'
import { startChild } from '../lib/proc.ts'
import {
  closeAll,
  collect,
  connectAll,
  connections,
  cpuMs,
  openWindow,
  round,
  settle,
  sleep,
  startOurs,
  summary,
  type Ctx,
  type RelayMode,
} from '../lib/context.ts'

export interface LatencySpec {
  name: string
  tenants: number
  perTenant: number
  rate: number
  /** Also run the floor server (children/floor.ts) on it: one tenant only, the floor does not route. */
  floor?: boolean
}

export const LATENCY: LatencySpec[] = [
  { name: 'light', tenants: 100, perTenant: 10, rate: 100 },
  { name: 'hot', tenants: 1, perTenant: 1000, rate: 10, floor: true },
  { name: 'hot100', tenants: 1, perTenant: 1000, rate: 100, floor: true },
]

export interface LatencyResult {
  p50: number | null
  p95: number | null
  p99: number | null
  delivered: number | null
  samples: number
  hist: Hist
  /** Ours and the floor: commit → the batch reaching the room on the edge, or the floor's notification (the rest of the time is server → client). */
  atEdge?: { p50: number | null; p99: number | null }
  /** Ours and the floor: ms the server took to write one flush to ≥ 100 subscribers (hot workloads: one event to 1,000). */
  fanoutSpan?: { p50: number | null; p99: number | null; flushes: number }
  /** CPU used by the server processes while measuring, in % of one core (ours: edge and relay). */
  cpu: Record<string, number>
}

/**
 * `ours`: relay and edge in one process (`npm run serve`); `split`: relay → HTTP → edge process; `baseline`; `floor`:
 * the floor server (commit → NOTIFY carrying the data → plain node:http, children/floor.ts).
 */
export type LatencySystem = 'ours' | 'split' | 'baseline' | 'floor'

/** How the writer publishes, and the clients connect, for each system. */
const WRITER_MODE = { ours: 'ours', split: 'ours', baseline: 'baseline', floor: 'floor-publish' } as const
const CLIENTS = { ours: 'ours', split: 'ours', baseline: 'baseline', floor: 'raw' } as const

/**
 * A server that is one child process (baseline, floor): too busy to exit politely once collapsed, so killed by PID.
 * `timed`: it answers `arrival` as our edge does (commit → the server, and fan-out spans).
 */
const startPlain = async (ctx: Ctx, file: string, timed = false) => {
  const c = await startChild(file, { DATABASE_URL: ctx.db.url })
  let stopped: Promise<void> | undefined
  const kill = () =>
    (stopped ??= (async () => {
      if (c.proc.pid && c.proc.exitCode === null && c.proc.signalCode === null) process.kill(c.proc.pid, 'SIGKILL')
      await c.stop()
    })())
  return { url: c.info.url as string, edge: timed ? c : undefined, relay: undefined as Child | undefined, server: c, stop: kill }
}

/** What a latency run measures besides the clients' latency, hung on the measured window: when it opens, once the writer is done, once delivery has settled. */
export interface WindowHooks {
  opened?(): Promise<void>
  written?(): Promise<void>
  settled?(): Promise<void>
}

/**
 * The part of a latency run every server shares (the Node edge's systems here, the Worker's in workers.ts): `conns` connected to `url`, a
 * warm-up, then `seconds` of events at the spec's rate in a window with a grace period; what the clients parsed in it and the fraction
 * delivered. Delivered = parsed within the run plus the grace period: a collapsed server's later backlog does not count.
 */
export const measuredWindow = async (
  ctx: Ctx,
  o: {
    label: string
    url: string
    conns: { path: string; headers: Record<string, string> }[]
    dechunk?: boolean
    spec: LatencySpec
    tenants: string[]
    writer: Record<string, unknown>
  },
  hooks: WindowHooks = {},
) => {
  const { label, spec, tenants, writer } = o
  const seconds = ctx.opts.quick ? 5 : 10
  const warmup = ctx.opts.quick ? 1 : 2
  const graceMs = ctx.opts.quick ? 3000 : 5000
  ctx.progress(`${label} · connecting ${o.conns.length} clients`)
  await connectAll(ctx, o.url, o.conns, { dechunk: o.dechunk })
  await openWindow(ctx, 1e18)
  ctx.progress(`${label} · warm-up ${warmup}s at ${spec.rate} ev/s`)
  await ctx.writer.call('run', { ...writer, rate: spec.rate, seconds: warmup, tenants }, 60_000 + warmup * 1000)
  await sleep(300)
  const start = nowMs()
  await openWindow(ctx, start, start + seconds * 1000 + graceMs)
  await hooks.opened?.()
  ctx.progress(`${label} · measuring ${seconds}s at ${spec.rate} ev/s (${spec.rate * spec.perTenant} deliveries/s)`)
  const w = await ctx.writer.call<{ published: number; errors: number; firstError?: string }>(
    'run',
    { ...writer, rate: spec.rate, seconds, tenants },
    120_000 + seconds * 1000,
  )
  await hooks.written?.()
  if (w.errors) ctx.progress(`  writer errors: ${w.errors} (${w.firstError})`)
  const expected = w.published * spec.perTenant
  await settle(ctx, expected, Math.max(0, start + seconds * 1000 + graceMs - nowMs()))
  await hooks.settled?.()
  const { hist, received } = await collect(ctx)
  return { s: summary(hist), hist, received, delivered: expected ? round(received / expected, 4) : null }
}

/**
 * One system on one workload: fresh server processes, clients connected, a warm-up, then `seconds` of events at
 * `rate`; latency from just before commit to the client's parse, and the fraction delivered within a grace period.
 */
export const latencyRun = async (
  ctx: Ctx,
  spec: LatencySpec,
  system: LatencySystem,
  relayMode: RelayMode = 'notify',
): Promise<LatencyResult> => {
  const tenants = Array.from({ length: spec.tenants }, (_, i) => `${spec.name}${i}`)
  await ctx.db.reset()
  const server =
    system === 'baseline'
      ? await startPlain(ctx, 'baseline/server.ts')
      : system === 'floor'
        ? await startPlain(ctx, 'children/floor.ts', true)
        : await startOurs(ctx, { split: system === 'split', relayMode })
  try {
    const procs: [string, Child][] =
      'server' in server
        ? [['server', server.server]]
        : system === 'split'
          ? [
              ['edge', server.edge!],
              ['relay', server.relay!],
            ]
          : [['edge+relay', server.edge!]]
    let cpu0: number[] = []
    let wall0 = 0
    let cpu: Record<string, number> = {}
    let edgeTimes: { hist: Hist; fanout: Hist } | undefined
    const label = `${spec.name} · ${system}`
    const conns = await connections(CLIENTS[system], tenants, spec.perTenant)
    const writer = { mode: WRITER_MODE[system], notify: relayMode === 'notify' }
    const { s, hist, delivered } = await measuredWindow(
      ctx,
      { label, url: server.url, conns, spec, tenants, writer },
      {
        async opened() {
          await server.edge?.call('arrival')
          cpu0 = await Promise.all(procs.map(([, c]) => cpuMs(c)))
          wall0 = Date.now()
        },
        async written() {
          const cpu1 = await Promise.all(procs.map(([, c]) => cpuMs(c)))
          cpu = Object.fromEntries(procs.map(([name], i) => [name, Math.round(((cpu1[i]! - cpu0[i]!) / (Date.now() - wall0)) * 100)]))
        },
        async settled() {
          edgeTimes = server.edge ? await server.edge.call<{ hist: Hist; fanout: Hist }>('arrival') : undefined
          if ('server' in server) await server.stop() // stop a backlog from flooding the clients while they report
        },
      },
    )
    const arrival = edgeTimes && summary(edgeTimes.hist)
    const atEdge = arrival && { p50: arrival.p50, p99: arrival.p99 }
    const span = edgeTimes && summary(edgeTimes.fanout)
    const fanoutSpan = span?.samples ? { p50: span.p50, p99: span.p99, flushes: span.samples } : undefined
    ctx.progress(
      `${label} · p50 ${s.p50} ms · p95 ${s.p95} · p99 ${s.p99} · delivered ${((delivered ?? 0) * 100).toFixed(1)} %` +
        (atEdge ? ` (commit → ${system === 'floor' ? 'server' : 'room'}: p50 ${atEdge.p50} · p99 ${atEdge.p99})` : '') +
        (fanoutSpan ? ` (fan-out span: p50 ${fanoutSpan.p50} · p99 ${fanoutSpan.p99} ms)` : '') +
        ` · CPU ${Object.entries(cpu)
          .map(([k, v]) => `${k} ${v} %`)
          .join(', ')}`,
    )
    return { ...s, delivered, hist, cpu, ...(atEdge ? { atEdge } : {}), ...(fanoutSpan ? { fanoutSpan } : {}) }
  } finally {
    await closeAll(ctx)
    await server.stop()
  }
}
