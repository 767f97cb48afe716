import { newHist, nowMs, type Hist } from '../lib/hist.ts'
import { startChild, type Child } from '../lib/proc.ts'
import {
  closeAll,
  collect,
  connectAll,
  connections,
  cpuMs,
  median,
  openWindow,
  RELAY_SECRET,
  round,
  settle,
  sleep,
  type Ctx,
} from '../lib/context.ts'
import { procCpuMs, procRss, startBenchWorker, startFloorWorker, type BenchWorker } from '../lib/workerd.ts'
import { postBatch } from '../../relay/edge-client.ts'
import { LATENCY, measuredWindow, type LatencySpec } from './latency.ts'

/** Subscribers per room shard in `hot_sharded` (the Worker's ROOM_SHARD_SUBSCRIBERS). */
export const SHARD_SUBSCRIBERS = 250

export interface WorkerLatency {
  p50: number | null
  p95: number | null
  p99: number | null
  delivered: number | null
  samples: number
  /** CPU of the Worker's workerd (Worker and rooms: one isolate on one thread) and of the relay, in % of one core. */
  cpu: Record<string, number>
  /** The Worker's workerd CPU while measuring, per event delivered to a client (µs). */
  cpuUsPerDelivery: number | null
  /** The relay's publish POSTs while measuring: their mean round trip (ms), the room's answer included. */
  publishRttMs: number | null
  /** With --cpu-prof: the profile's samples per delivery (µs) by where they ran, and the top functions by self time. */
  profile?: { usPerDelivery: Record<string, number>; top: string[] }
}

/** Each run has tenants of its own: rooms keep their history in the Worker's storage, while the outbox restarts at seq 1. */
let runs = 0

/**
 * One latency workload on the Worker: commit → relay → signed POST → Worker → room (Durable Object) → WebSocket →
 * Worker → SSE client, with the same clients, writer, warm-up, window and grace as the Node edge's (latency.ts).
 * `via: 'proxy'`: the relay and the clients go through wrangler dev's front proxy instead of the Worker's own port.
 */
const latencyOnWorker = async (
  ctx: Ctx,
  worker: BenchWorker,
  spec: LatencySpec,
  label: string,
  via: 'direct' | 'proxy' = 'direct',
  profiled = true,
) => {
  const run = ++runs
  const tenants = Array.from({ length: spec.tenants }, (_, i) => `w${run}-${spec.name}${i}`)
  const url = via === 'direct' ? worker.url : worker.proxyUrl
  await ctx.db.reset()
  const relay = await startChild('children/relay.ts', { DATABASE_URL: ctx.db.url, EDGE_URL: url, RELAY_SECRET })
  try {
    type Posts = { count: number; seconds: number }
    const cpuNow = async () => ({ workerd: procCpuMs(worker.pid), proxy: procCpuMs(worker.proxyPid), relay: await cpuMs(relay) })
    let prof: Child | undefined
    let posts0: Posts = { count: 0, seconds: 0 }
    let cpu0 = { workerd: 0, proxy: 0, relay: 0 }
    let wall0 = 0
    let wallMs = 0
    let publishRttMs: number | null = null
    let used = cpu0
    const conns = await connections('ours', tenants, spec.perTenant)
    const { s, hist, received, delivered } = await measuredWindow(
      ctx,
      { label, url, conns, dechunk: true, spec, tenants, writer: { mode: 'ours' } },
      {
        async opened() {
          if (ctx.opts.cpuProf && profiled) prof = await startChild('children/workerd-prof.ts', {}, ['--experimental-websocket'])
          await prof?.call('start', { url: worker.inspectorUrl })
          posts0 = await relay.call<Posts>('posts')
          cpu0 = await cpuNow()
          wall0 = Date.now()
        },
        async settled() {
          wallMs = Date.now() - wall0
          const posts1 = await relay.call<Posts>('posts')
          if (posts1.count > posts0.count)
            publishRttMs = round(((posts1.seconds - posts0.seconds) * 1000) / (posts1.count - posts0.count), 2)
          const cpu1 = await cpuNow()
          used = { workerd: cpu1.workerd - cpu0.workerd, proxy: cpu1.proxy - cpu0.proxy, relay: cpu1.relay - cpu0.relay }
        },
      },
    )
    const profile = prof && (await profileOf(prof, label, received))
    const cpu = Object.fromEntries(
      Object.entries(used)
        .filter(([k]) => k !== 'proxy' || via === 'proxy')
        .map(([k, ms]) => [k, Math.round((ms / wallMs) * 100)]),
    )
    const cpuUsPerDelivery = received ? round((used.workerd * 1000) / received, 1) : null
    ctx.progress(
      `${label} · p50 ${s.p50} ms · p95 ${s.p95} · p99 ${s.p99} · delivered ${((delivered ?? 0) * 100).toFixed(1)} % · ` +
        `workerd ${cpuUsPerDelivery} µs per delivery · publish round trip ${publishRttMs} ms · CPU ${Object.entries(cpu)
          .map(([k, v]) => `${k} ${v} %`)
          .join(', ')}`,
    )
    return {
      result: { ...s, delivered, cpu, cpuUsPerDelivery, publishRttMs, ...(profile ? { profile } : {}) } satisfies WorkerLatency,
      hist,
    }
  } finally {
    await closeAll(ctx)
    await relay.stop()
  }
}

/** Stops a profile of the measuring window, writes it to bench/results/prof/, and sums it up per delivery. */
const profileOf = async (prof: Child, label: string, deliveries: number) => {
  const file = new URL(`../results/prof/workerd-${label.replace(/\W+/g, '-')}-${Date.now()}.cpuprofile`, import.meta.url).pathname
  try {
    const { ms, top } = await prof.call<{ ms: Record<string, number>; top: string[] }>('stop', { file })
    const usPerDelivery = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, round((v * 1000) / Math.max(1, deliveries), 1)!]))
    return { usPerDelivery, top }
  } finally {
    await prof.stop()
  }
}

/** `--repeat` runs of one workload, summarised as run.ts does the Node edge's: medians, and the merged histogram. */
const repeated = async (ctx: Ctx, run: () => Promise<{ result: WorkerLatency; hist: Hist }>) => {
  const all: { result: WorkerLatency; hist: Hist }[] = []
  for (let r = 0; r < ctx.opts.repeat; r++) all.push(await run())
  const hist = newHist()
  for (const x of all) for (let i = 0; i < hist.length; i++) hist[i]! += x.hist[i]!
  const of = (k: 'p50' | 'p95' | 'p99' | 'delivered' | 'cpuUsPerDelivery' | 'publishRttMs') => median(all.map((x) => x.result[k]))
  return {
    result: {
      p50: of('p50'),
      p95: of('p95'),
      p99: of('p99'),
      delivered: of('delivered'),
      cpu_us_per_delivery: of('cpuUsPerDelivery'),
      publish_rtt_ms: of('publishRttMs'),
      runs: all.map((x) => x.result),
    },
    hist,
  }
}

/**
 * Memory per connected browser: the Worker's workerd RSS before and after `clients` clients connected, idle, on a fresh
 * Worker (measured after other workloads, freed memory that the allocator keeps would absorb the new connections and
 * read as almost nothing). One round of clients connects and leaves first, so the isolate and room are warm.
 */
const memoryOnWorker = async (ctx: Ctx, worker: BenchWorker, clients: number) => {
  const tenant = `w${++runs}-mem`
  // The isolate's JS heap after a full GC, through its inspector: what a Worker's and an object's 128 MB limit counts.
  const inspector = await startChild('children/workerd-prof.ts', {}, ['--experimental-websocket'])
  const heap = async () =>
    (await inspector.call<{ usedSize: number }>('heap', { url: worker.inspectorUrl, poke: `${worker.url}/healthz` })).usedSize
  try {
    ctx.progress(`workers · memory · warming up with 100 clients`)
    await connectAll(ctx, worker.url, await connections('ours', [tenant], 100), { dechunk: true })
    await closeAll(ctx)
    await sleep(1000)
    const heapBefore = await heap()
    const rssBefore = procRss(worker.pid)
    ctx.progress(`workers · memory · connecting ${clients} clients`)
    await connectAll(ctx, worker.url, await connections('ours', [tenant], clients), { dechunk: true })
    try {
      await sleep(2000)
      const heapAfter = await heap()
      const rssAfter = procRss(worker.pid)
      const bytesPerConnection = Math.round((rssAfter - rssBefore) / clients)
      const heapBytesPerConnection = Math.round((heapAfter - heapBefore) / clients)
      ctx.progress(
        `workers · memory · ${bytesPerConnection} B of workerd RSS and ${heapBytesPerConnection} B of JS heap per connected client`,
      )
      return { clients, bytesPerConnection, heapBytesPerConnection, rssBefore, rssAfter, heapBefore, heapAfter }
    } finally {
      await closeAll(ctx)
    }
  } finally {
    await inspector.stop()
  }
}

/**
 * Fan-out ceiling of one room on the Worker (1,000 clients on one tenant, signed batches posted straight to the
 * Worker, one in flight at a time, as fanout.ts does for the Node edge), and the workerd CPU per delivery at each step.
 */
const fanoutOnWorker = async (ctx: Ctx, worker: BenchWorker) => {
  const clients = 1000
  const stepS = ctx.opts.quick ? 1.5 : 4
  // Doubling until a step delivers < 95 %: the relay's batches grow with the rate, as for the Node edge (fanout.ts).
  const rates = [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120]
  const tenant = `w${++runs}-fan`
  const steps: { rate: number; deliveriesPerS: number; delivered: number; cpuUsPerDelivery: number | null }[] = []
  try {
    ctx.progress(`workers · fan-out · connecting ${clients} clients`)
    await connectAll(ctx, worker.url, await connections('ours', [tenant], clients), { dechunk: true })
    await sleep(1000)
    for (const rate of rates) {
      await openWindow(ctx, nowMs())
      const cpu0 = procCpuMs(worker.pid)
      const w = await ctx.writer.call<{ published: number; ms: number }>(
        'run',
        { mode: 'edge', rate, seconds: stepS, tenants: [tenant], url: worker.url, secret: RELAY_SECRET },
        120_000,
      )
      const expected = w.published * clients
      const t0 = Date.now()
      await settle(ctx, expected, ctx.opts.quick ? 1000 : 2000, 500)
      const { received } = await collect(ctx)
      const elapsedS = (w.ms + (Date.now() - t0)) / 1000
      const cpuUsPerDelivery = received ? round(((procCpuMs(worker.pid) - cpu0) * 1000) / received, 1) : null
      const step = {
        rate,
        deliveriesPerS: Math.round(received / Math.max(stepS, elapsedS)),
        delivered: round(received / expected, 4) ?? 0,
        cpuUsPerDelivery,
      }
      steps.push(step)
      ctx.progress(
        `workers · fan-out · ${rate} ev/s × ${clients}: ${step.deliveriesPerS} deliveries/s, ${(step.delivered * 100).toFixed(1)} % delivered, ${cpuUsPerDelivery} µs workerd CPU per delivery`,
      )
      if (step.delivered < 0.95) break
    }
    const ok = steps.filter((s) => s.delivered >= 0.95)
    const top = ok.reduce<(typeof ok)[number] | undefined>((a, s) => (!a || s.deliveriesPerS > a.deliveriesPerS ? s : a), undefined)
    // Every step kept up: the ceiling is above what the steps asked for (the clients' process may be what stopped it).
    const reached = steps.some((s) => s.delivered < 0.95)
    return { ceiling: top?.deliveriesPerS ?? 0, reached, steps }
  } finally {
    await closeAll(ctx)
  }
}

/**
 * The room's publish round trip at 0, 100 and 1,000 subscribers: one-event batches posted straight to the Worker as
 * the relay posts them (postBatch), 300 ms apart, each timed from the POST to its answer. Spaced so that each finds the thread idle (locally the
 * Worker's side of every delivery shares it): what is left is whether the room's answer waits for its fan-out.
 */
const publishRttOnWorker = async (ctx: Ctx, worker: BenchWorker) => {
  const posts = ctx.opts.quick ? 15 : 40
  const out: { subscribers: number; p50: number | null; p90: number | null; max: number | null }[] = []
  for (const subscribers of [0, 100, 1000]) {
    const tenant = `w${++runs}-rtt`
    try {
      if (subscribers) await connectAll(ctx, worker.url, await connections('ours', [tenant], subscribers), { dechunk: true })
      await openWindow(ctx, nowMs())
      const ms: number[] = []
      for (let seq = 1; seq <= posts; seq++) {
        const events = [{ seq, topic: 'bench', data: `{"t":${nowMs()}}`, ts: Date.now() }]
        const t0 = nowMs()
        await postBatch(worker.url, RELAY_SECRET, { tenant, events }) // the relay's own signed POST
        ms.push(nowMs() - t0)
        await sleep(300)
      }
      const sorted = ms.slice(2).sort((a, b) => a - b) // the first two warm the room up
      const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!, 2)
      out.push({ subscribers, p50: at(0.5), p90: at(0.9), max: round(sorted.at(-1)!, 2) })
      ctx.progress(`workers · publish round trip · ${subscribers} subscribers: p50 ${at(0.5)} ms · p90 ${at(0.9)} ms`)
    } finally {
      await closeAll(ctx)
    }
  }
  return out
}

const spec = (name: string) => LATENCY.find((s) => s.name === name)!

/** What `--only workers` runs; `--only workers:hot,workers:fanout` (say) runs those parts alone. */
export const WORKERS_PARTS = ['light', 'hot', 'floor', 'fanout', 'rtt', 'proxy', 'sharded'] as const

/**
 * The Workers edge, in the same run as the Node edge's figures: light and hot latency through real workerd and the
 * real relay, the fan-out ceiling of one room, workerd CPU per delivery and RSS per connected browser, the hot
 * workload through wrangler dev's proxy (full runs), and the hot workload again with the room sharded
 * (ROOM_SHARD_SUBSCRIBERS). Histograms are returned for the chart.
 */
export const workersBench = async (ctx: Ctx) => {
  const wants = (part: (typeof WORKERS_PARTS)[number]) =>
    !ctx.opts.only || ctx.opts.only.has('workers') || ctx.opts.only.has(`workers:${part}`)
  const t0 = Date.now()
  const hists: Record<string, Hist> = {}
  const results: Record<string, unknown> = {}
  const profile = ctx.opts.cpuProf
  if (wants('light') || wants('hot') || wants('fanout') || wants('rtt') || (wants('proxy') && !ctx.opts.quick)) {
    ctx.progress('workers · starting the Worker under wrangler dev')
    const worker = await startBenchWorker({}, { profile })
    try {
      if (wants('fanout')) {
        const memory = await memoryOnWorker(ctx, worker, 1000)
        results.bytes_per_connection = memory.bytesPerConnection
        results.heap_bytes_per_connection = memory.heapBytesPerConnection
        results.memory = memory
      }
      for (const name of ['light', 'hot'] as const) {
        if (!wants(name)) continue
        const r = await repeated(ctx, () => latencyOnWorker(ctx, worker, spec(name), `workers · ${name}`))
        results[name] = r.result
        hists[name] = r.hist
      }
      // Per delivery as the hot workload has them: each event its own batch, to 1,000 subscribers of one room.
      if (results.hot) results.cpu_us_per_delivery = (results.hot as { cpu_us_per_delivery: number | null }).cpu_us_per_delivery
      if (wants('fanout')) {
        const f = await fanoutOnWorker(ctx, worker)
        results.fanout_events_per_s = f.ceiling
        results.fanout = { ceiling_reached: f.reached, steps: f.steps }
      }
      if (wants('rtt')) results.publish_rtt = await publishRttOnWorker(ctx, worker)
      if (wants('proxy') && !ctx.opts.quick) {
        // What `wrangler dev` users see: the same, through its front proxy (absent in production).
        const r = await latencyOnWorker(ctx, worker, spec('hot'), 'workers · hot via wrangler dev proxy', 'proxy')
        results.hot_via_proxy = r.result
      }
    } finally {
      await worker.stop()
    }
  }
  if (wants('floor')) {
    // The floor Worker (bench/workerd/floor-worker.ts): the same relay, clients and workload, and only what the Workers
    // path cannot do without (an RPC per batch, a hibernatable WebSocket per browser, SSE from the Worker); then the
    // same with the rooms serving SSE themselves (`floor_stream`: the design docs/cloudflare.md compares costs with).
    for (const transport of ['socket', 'stream'] as const) {
      const name = transport === 'socket' ? 'floor' : 'floor_stream'
      ctx.progress(`workers · starting the floor Worker (${transport} per browser)`)
      const floor = await startFloorWorker(transport)
      try {
        const worker = { ...floor, proxyUrl: floor.url, proxyPid: floor.pid }
        const memory = await memoryOnWorker(ctx, worker, 1000)
        const r = await repeated(ctx, () => latencyOnWorker(ctx, worker, spec('hot'), `workers · hot · ${name}`, 'direct', false))
        results[name] = {
          ...r.result,
          bytes_per_connection: memory.bytesPerConnection,
          heap_bytes_per_connection: memory.heapBytesPerConnection,
        }
        hists[name] = r.hist
      } finally {
        await floor.stop()
      }
    }
  }
  if (wants('sharded')) {
    ctx.progress(`workers · starting the Worker with ROOM_SHARD_SUBSCRIBERS=${SHARD_SUBSCRIBERS}`)
    const worker = await startBenchWorker({ ROOM_SHARD_SUBSCRIBERS: String(SHARD_SUBSCRIBERS) }, { profile })
    try {
      const r = await repeated(ctx, () => latencyOnWorker(ctx, worker, spec('hot'), 'workers · hot sharded'))
      results.hot_sharded = { ...r.result, shard_subscribers: SHARD_SUBSCRIBERS }
      hists.hot_sharded = r.hist
    } finally {
      await worker.stop()
    }
  }
  results.seconds = Math.round((Date.now() - t0) / 1000)
  return { results, hists }
}
