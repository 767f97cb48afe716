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
  const seconds = ctx.opts.quick ? 5 : 10
  const warmup = ctx.opts.quick ? 1 : 2
  const mode = WRITER_MODE[system]
  const notify = relayMode === 'notify'
  const tenants = Array.from({ length: spec.tenants }, (_, i) => `${spec.name}${i}`)
  await ctx.db.reset()
  const server =
    system === 'baseline'
      ? await startPlain(ctx, 'baseline/server.ts')
      : system === 'floor'
        ? await startPlain(ctx, 'children/floor.ts', true)
        : await startOurs(ctx, { split: system === 'split', relayMode })
  try {
    ctx.progress(`${spec.name} · ${system} · connecting ${spec.tenants * spec.perTenant} clients`)
    await connectAll(ctx, server.url, await connections(CLIENTS[system], tenants, spec.perTenant))
    await openWindow(ctx, 1e18)
    ctx.progress(`${spec.name} · ${system} · warm-up ${warmup}s at ${spec.rate} ev/s`)
    await ctx.writer.call('run', { mode, rate: spec.rate, seconds: warmup, tenants, notify }, 60_000 + warmup * 1000)
    await sleep(300)
    const graceMs = ctx.opts.quick ? 3000 : 5000
    const start = nowMs()
    // Delivered = parsed within the run plus a grace period; a collapsed server's later backlog does not count.
    await openWindow(ctx, start, start + seconds * 1000 + graceMs)
    await server.edge?.call('arrival')
    const procs: [string, Child][] =
      'server' in server
        ? [['server', server.server]]
        : system === 'split'
          ? [
              ['edge', server.edge!],
              ['relay', server.relay!],
            ]
          : [['edge+relay', server.edge!]]
    const cpu0 = await Promise.all(procs.map(([, c]) => cpuMs(c)))
    const wall0 = Date.now()
    ctx.progress(`${spec.name} · ${system} · measuring ${seconds}s at ${spec.rate} ev/s (${spec.rate * spec.perTenant} deliveries/s)`)
    const w = await ctx.writer.call<{ published: number; errors: number; firstError?: string }>(
      'run',
      { mode, rate: spec.rate, seconds, tenants, notify },
      120_000 + seconds * 1000,
    )
    const cpu1 = await Promise.all(procs.map(([, c]) => cpuMs(c)))
    const cpu = Object.fromEntries(procs.map(([name], i) => [name, Math.round(((cpu1[i]! - cpu0[i]!) / (Date.now() - wall0)) * 100)]))
    if (w.errors) ctx.progress(`  writer errors: ${w.errors} (${w.firstError})`)
    const expected = w.published * spec.perTenant
    await settle(ctx, expected, Math.max(0, start + seconds * 1000 + graceMs - nowMs()))
    const edgeTimes = server.edge ? await server.edge.call<{ hist: Hist; fanout: Hist }>('arrival') : undefined
    if ('server' in server) await server.stop() // stop a backlog from flooding the clients while they report
    const { hist, received } = await collect(ctx)
    const s = summary(hist)
    const delivered = expected ? round(received / expected, 4) : null
    const arrival = edgeTimes && summary(edgeTimes.hist)
    const atEdge = arrival && { p50: arrival.p50, p99: arrival.p99 }
    const span = edgeTimes && summary(edgeTimes.fanout)
    const fanoutSpan = span?.samples ? { p50: span.p50, p99: span.p99, flushes: span.samples } : undefined
    ctx.progress(
      `${spec.name} · ${system} · p50 ${s.p50} ms · p95 ${s.p95} · p99 ${s.p99} · delivered ${((delivered ?? 0) * 100).toFixed(1)} %` +
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
