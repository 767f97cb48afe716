import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { benchDatabase } from './lib/db.ts'
import { latencyChart } from './lib/chart.ts'
import { count, merge, newHist, type Hist } from './lib/hist.ts'
import { killAll, startChild } from './lib/proc.ts'
import { type Ctx, median, type Options, round } from './lib/context.ts'
import { drain, floor } from './workloads/drain.ts'
import { fanout } from './workloads/fanout.ts'
import { LATENCY, latencyRun, type LatencyResult } from './workloads/latency.ts'
import { memoryPerConnection } from './workloads/memory.ts'
import { restartStorm } from './workloads/restart-storm.ts'
import { SHARD_SUBSCRIBERS, workersBench } from './workloads/workers.ts'
import { writes } from './workloads/writes.ts'

/**
 * `npm run bench [-- --quick] [--repeat N] [--only light,hot,hot100,fanout,memory,drain,floor,writes,restart_storm,workers[:part]]
 * [--cpu-prof] [--ours-only] [--no-split] [--out file] | --chart-from file.json`: ours (one process, and split: relay →
 * HTTP → edge), the Logtide-style baseline, the floor server, and our Worker in workerd (workloads/workers.ts), in one
 * run, on this machine.
 */
const args = process.argv.slice(2)
const flag = (name: string) => args.includes(`--${name}`)
const value = (name: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const quick = flag('quick')
const opts: Options = {
  quick,
  repeat: Number(value('repeat') ?? (quick ? 1 : 3)),
  cpuProf: flag('cpu-prof'),
  only: value('only') ? new Set(value('only')!.split(',')) : undefined,
  oursOnly: flag('ours-only'),
  noSplit: flag('no-split'),
}
const out = value('out') ?? new URL('./results/latest.json', import.meta.url).pathname
const wants = (w: string) => !opts.only || opts.only.has(w)

const t0 = Date.now()
const progress = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}`)

// Everything stops by itself: a hard deadline for the whole run, and children killed by PID on any exit.
const deadline = setTimeout(
  () => {
    console.error('bench: hard deadline reached; stopping')
    killAll()
    process.exit(2)
  },
  (quick ? 10 : 45) * 60_000,
)
deadline.unref()
process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (killAll(), process.exit(130)))

const main = async () => {
  progress(`edge-relay bench (${quick ? 'quick' : 'full'}, ${opts.repeat}× each latency workload) on ${cpus().length} cores`)
  const db = await benchDatabase(progress)
  progress(`database ${db.embedded ? 'embedded ' : ''}PostgreSQL ${db.version}`)
  const workers = await Promise.all([0, 1].map(() => startChild('children/clients.ts')))
  const writer = await startChild('children/writer.ts', { DATABASE_URL: db.url })
  const ctx: Ctx = { opts, db, workers, writer, progress }
  const results: Record<string, unknown> = {}
  const ratios: Record<string, number | null> = {}
  results.ratios = ratios
  const hists: Record<string, Partial<Record<Series, Hist>>> = {}
  try {
    if (wants('floor')) {
      const f = await floor(ctx)
      results.floor_ms = { p50: f.p50, p99: f.p99 }
      results.floor_publish_ms = f.publishing
    }
    for (const spec of LATENCY) {
      if (!wants(spec.name)) continue
      const runs: Record<Who, LatencyResult>[] = []
      for (let r = 0; r < opts.repeat; r++) {
        if (opts.repeat > 1) progress(`${spec.name} · run ${r + 1} of ${opts.repeat}`)
        const skipped: LatencyResult = { p50: null, p95: null, p99: null, delivered: null, samples: 0, hist: newHist(), cpu: {} }
        const ours = await latencyRun(ctx, spec, 'ours')
        const ours_split = opts.noSplit ? skipped : await latencyRun(ctx, spec, 'split')
        const baseline = opts.oursOnly ? skipped : await latencyRun(ctx, spec, 'baseline')
        runs.push({ ours, ours_split, baseline, floor: spec.floor ? await latencyRun(ctx, spec, 'floor') : skipped })
      }
      const agg = (who: Who) => ({
        p50: median(runs.map((x) => x[who].p50)),
        p95: median(runs.map((x) => x[who].p95)),
        p99: median(runs.map((x) => x[who].p99)),
        delivered: median(runs.map((x) => x[who].delivered)),
        runs: runs.map(({ [who]: { hist: _h, ...rest } }) => rest),
      })
      results[spec.name] = {
        ours: agg('ours'),
        ours_split: agg('ours_split'),
        baseline: agg('baseline'),
        ...(spec.floor ? { floor: agg('floor') } : {}),
        spec,
      }
      // "Close to the limit", per run (the floor ran in the same minute as ours): ours p99 ÷ the floor server's.
      if (spec.floor) ratios[`${spec.name}_p99_vs_floor`] = median(runs.map((x) => ratio(x.ours.p99, x.floor.p99)))
      const h = { ours: newHist(), ours_split: newHist(), baseline: newHist(), floor: newHist() }
      for (const x of runs) for (const who of WHO) merge(h[who], x[who].hist)
      hists[spec.name] = h
    }
    if (wants('fanout')) {
      const ours = await fanout(ctx, 'ours')
      const reference = await fanout(ctx, 'raw')
      results.fanout_events_per_s = ours.ceiling
      results.fanout = { ours, reference_batched: reference }
      ratios.fanout_vs_batched_reference = ratio(ours.ceiling, reference.ceiling)
      ratios.fanout_cpu_per_delivery_vs_batched_reference = ratio(ours.cpuNsPerDelivery, reference.cpuNsPerDelivery)
    }
    if (wants('memory')) {
      const ours = await memoryPerConnection(ctx, 'ours')
      const raw = await memoryPerConnection(ctx, 'raw')
      const baseline = await memoryPerConnection(ctx, 'baseline')
      results.bytes_per_connection = ours.bytesPerConnection
      results.memory = { clients: 10_000, ours, raw, baseline }
    }
    if (wants('drain')) {
      const d = await drain(ctx)
      results.relay_events_per_s = d.relayRate
      results.commit_ceiling_per_s = d.commitCeiling
      results.drain = d
    }
    if (wants('writes')) results.writes = await writes(ctx)
    if (wants('restart_storm')) results.restart_storm = await restartStorm(ctx)
    if (wants('workers') || [...(opts.only ?? [])].some((w) => w.startsWith('workers:'))) {
      const w = await workersBench(ctx)
      // The issue's yardstick: the Worker's p99 over the Node edge's, same workload, same run (one process and split).
      const p99 = (x: unknown) => (x as { p99?: number | null } | undefined)?.p99 ?? null
      const ratio = (a: unknown, b: unknown) => (p99(a) && p99(b) ? round(p99(a)! / p99(b)!, 2) : null)
      const vsNode = (name: string, node: string) =>
        Object.fromEntries(WHO.slice(0, 2).map((who) => [who, ratio(w.results[name], (results[node] as any)?.[who])]))
      w.results.p99_vs_node = {
        light: vsNode('light', 'light'),
        hot: vsNode('hot', 'hot'),
        hot_sharded: vsNode('hot_sharded', 'hot'),
        floor: vsNode('floor', 'hot'),
        floor_stream: vsNode('floor_stream', 'hot'),
      }
      // How close the Worker is to what workerd itself can do: ours ÷ the floor Worker's, as the Node edge's ÷ its floor.
      w.results.p99_vs_floor = { hot: ratio(w.results.hot, w.results.floor), hot_sharded: ratio(w.results.hot_sharded, w.results.floor) }
      results.workers = w.results
      for (const [name, h] of Object.entries(w.hists)) {
        const own = WORKERS_ON_HOT[name as keyof typeof WORKERS_ON_HOT]
        const [panel, who] = own ? ['hot', own] : [name, 'workers' as const]
        ;(hists[panel] ??= {})[who] = h
      }
    }
  } finally {
    await Promise.all([...workers, writer].map((c) => c.stop()))
    await db.drop()
  }
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: db.version,
    embeddedPostgres: db.embedded,
  }
  // The merged latency histograms (non-empty buckets only), so the chart can be redrawn: --chart-from file.json.
  const histograms = Object.fromEntries(
    Object.entries(hists).map(([name, h]) => [name, Object.fromEntries(ALL.flatMap((who) => (h[who] ? [[who, sparse(h[who])]] : [])))]),
  )
  const report = { date: new Date().toISOString(), mode: quick ? 'quick' : 'full', repeat: opts.repeat, machine, ...results, histograms }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
  const panels = panelsOf(hists, results)
  if (panels.length) writeFileSync(`${out.replace(/\.json$/, '')}.svg`, latencyChart(panels))
  progress(`wrote ${out}`)
  printTable(report)
}

type Who = 'ours' | 'ours_split' | 'baseline' | 'floor'
const WHO: Who[] = ['ours', 'ours_split', 'baseline', 'floor']
/** The chart's series: the latency workloads' systems, and the Worker's (results under `workers`). */
/** Results under `workers` drawn as series of their own on the `hot` panel; the others (`light`, `hot`) as `workers` on theirs. */
const WORKERS_ON_HOT = { hot_sharded: 'workers_sharded', floor: 'workers_floor', floor_stream: 'workers_floor_stream' } as const
type Series = Who | 'workers' | (typeof WORKERS_ON_HOT)[keyof typeof WORKERS_ON_HOT]
const ALL: Series[] = [...WHO, 'workers', ...Object.values(WORKERS_ON_HOT)]
const SERIES: Record<Series, { label: string; color: string }> = {
  ours: { label: 'edge-relay (one process: npm run serve)', color: '#1f6feb' },
  ours_split: { label: 'edge-relay split (relay → HTTP → edge)', color: '#8250df' },
  baseline: { label: 'baseline (Logtide-style)', color: '#d9480f' },
  floor: { label: 'floor (NOTIFY with the data → plain node:http)', color: '#57606a' },
  workers: { label: 'edge-relay on Workers (relay → workerd)', color: '#f6a700' },
  workers_sharded: { label: `Workers, rooms sharded by ${SHARD_SUBSCRIBERS}`, color: '#2da44e' },
  workers_floor: { label: 'floor Worker (RPC → socket per browser → SSE)', color: '#8250df' },
  workers_floor_stream: { label: 'floor Worker, SSE served by the room (no hibernation)', color: '#bf3989' },
}
/** a ÷ b to 3 decimals; null when either is missing. */
const ratio = (a: number | null, b: number | null) => (a != null && b ? Number((a / b).toFixed(3)) : null)
const pct = (d: number | null | undefined) => (d == null ? '' : `, ${(d * 100).toFixed(d < 0.995 ? 1 : 0)} % delivered`)
const resultOf = (r: Record<string, any>, name: string, who: Series) => {
  if (who === 'workers') return r.workers?.[name]
  const own = Object.entries(WORKERS_ON_HOT).find(([, series]) => series === who)
  return own ? r.workers?.[own[0]] : r[name]?.[who]
}
/** One chart panel per workload; a system that did not run (no samples) is left out. */
const panelsOf = (hists: Record<string, Partial<Record<Series, Hist>>>, r: Record<string, any>) =>
  Object.entries(hists).map(([name, h]) => ({
    title: name,
    series: ALL.filter((who) => h[who] && count(h[who]) > 0).map((who) => ({
      label: SERIES[who].label + pct(resultOf(r, name, who)?.delivered),
      color: SERIES[who].color,
      hist: h[who]!,
    })),
  }))

const sparse = (h: number[]) => Object.fromEntries(h.flatMap((n, i) => (n ? [[i, n]] : [])))
const dense = (s: Record<string, number>) => {
  const h = newHist()
  for (const [i, n] of Object.entries(s)) h[Number(i)] = n
  return h
}

/** Redraws the chart of an earlier run's JSON (next to it, .svg). */
const chartFrom = (file: string) => {
  const r = JSON.parse(readFileSync(file, 'utf8'))
  const hists = Object.fromEntries(
    Object.entries(r.histograms as Record<string, Partial<Record<Series, Record<string, number>>>>).map(([name, h]) => [
      name,
      Object.fromEntries(ALL.map((who) => [who, dense(h[who] ?? {})])) as Record<Series, Hist>,
    ]),
  )
  const panels = panelsOf(hists, r)
  writeFileSync(`${file.replace(/\.json$/, '')}.svg`, latencyChart(panels))
}

const printTable = (r: Record<string, any>) => {
  const rows: string[] = []
  for (const w of ['light', 'hot', 'hot100']) {
    if (!r[w]) continue
    const f = (x: any) => `p50 ${x.p50} / p95 ${x.p95} / p99 ${x.p99} ms, ${(x.delivered * 100).toFixed(1)} %`
    rows.push(
      `${w.padEnd(7)} ours ${f(r[w].ours)} | baseline ${f(r[w].baseline)} | p99 ratio ${(r[w].baseline.p99 / r[w].ours.p99).toFixed(1)}×`,
    )
    if (r[w].ours_split?.p50 != null) rows.push(`${''.padEnd(7)} split (relay → HTTP → edge) ${f(r[w].ours_split)}`)
    if (r[w].floor?.p50 != null)
      rows.push(`${''.padEnd(7)} floor server ${f(r[w].floor)} | ours p99 ÷ floor p99 ${r.ratios[`${w}_p99_vs_floor`]}×`)
  }
  if (r.floor_ms) rows.push(`floor   commit → bare LISTEN p50 ${r.floor_ms.p50} / p99 ${r.floor_ms.p99} ms`)
  if (r.floor_publish_ms)
    rows.push(`        the same for a publishing transaction p50 ${r.floor_publish_ms.p50} / p99 ${r.floor_publish_ms.p99} ms`)
  if (r.fanout)
    rows.push(
      `fan-out ours ${r.fanout.ours.ceiling} deliveries/s | plain node:http, batched alike ${r.fanout.reference_batched.ceiling} (ours ${r.ratios.fanout_vs_batched_reference}×; CPU a delivery ${r.fanout.ours.cpuNsPerDelivery} ns vs ${r.fanout.reference_batched.cpuNsPerDelivery}, ${r.ratios.fanout_cpu_per_delivery_vs_batched_reference}×)`,
    )
  if (r.memory)
    rows.push(
      `memory  ours ${r.memory.ours.bytesPerConnection} B | plain ${r.memory.raw.bytesPerConnection} B | baseline ${r.memory.baseline.bytesPerConnection} B per idle connection`,
    )
  if (r.drain)
    rows.push(
      `drain   relay ${r.relay_events_per_s} events/s | commit ceiling ${r.commit_ceiling_per_s}/s (${((r.relay_events_per_s / r.commit_ceiling_per_s) * 100).toFixed(0)} %)`,
    )
  if (r.writes) {
    const w = r.writes
    const by = (m: Record<string, number>) => ['w1', 'w4', 'w8', 'w16'].map((k) => `${k} ${m[k]}`).join(' · ')
    const lat = (x: { p50: number; p99: number; rate: number }) => `p50 ${x.p50} / p99 ${x.p99} ms at ${x.rate}/s`
    rows.push(`writes  commits/s notify ${by(w.notify)}`)
    rows.push(`        commits/s poll   ${by(w.poll)} (${w.ratio_w8}× at 8 writers)`)
    rows.push(
      `        one hot tenant, ${w.hot_tenant.writers} writers: notify ${w.hot_tenant.notify} · poll ${w.hot_tenant.poll} commits/s`,
    )
    rows.push(
      `        poll commit → client: ${lat(w.poll_latency.at50)} (50 %) | ${lat(w.poll_latency.at90)} (90 %) | light ${lat(w.poll_latency.light)}`,
    )
  }
  if (r.restart_storm) {
    const s = r.restart_storm
    rows.push(
      `restart ${s.clients} clients on a Workers room: all live again ${s.allLiveMs} ms after the restart (p50 ${s.liveMs.p50}) · lost ${s.lost} · duplicated ${s.duplicated} · refused ${s.failed}`,
    )
  }
  if (r.workers) {
    const w = r.workers
    const f = (x: any) => (x ? `p50 ${x.p50} / p95 ${x.p95} / p99 ${x.p99} ms, ${(x.delivered * 100).toFixed(1)} %` : 'not run')
    const vs = (x: any) => (x?.ours ? ` (p99 ${x.ours}× the Node edge's in one process, ${x.ours_split ?? '–'}× split)` : '')
    const rtt = (x: { publish_rtt_ms?: number | null } | undefined) =>
      x?.publish_rtt_ms != null ? ` · publish round trip ${x.publish_rtt_ms} ms` : ''
    rows.push(`workers (${w.seconds} s) light ${f(w.light)}${vs(w.p99_vs_node.light)}${rtt(w.light)}`)
    rows.push(
      `        hot   ${f(w.hot)}${vs(w.p99_vs_node.hot)} · ${w.cpu_us_per_delivery ?? '–'} µs workerd CPU per delivery${rtt(w.hot)}`,
    )
    rows.push(`        hot, rooms sharded by ${SHARD_SUBSCRIBERS}: ${f(w.hot_sharded)}${vs(w.p99_vs_node.hot_sharded)}`)
    if (w.floor)
      rows.push(
        `        hot on the floor Worker ${f(w.floor)}${vs(w.p99_vs_node.floor)} · ours p99 ÷ floor p99 ${w.p99_vs_floor?.hot ?? '–'}× (sharded ${w.p99_vs_floor?.hot_sharded ?? '–'}×) · ${w.floor.cpu_us_per_delivery ?? '–'} µs workerd CPU per delivery`,
      )
    if (w.floor_stream)
      rows.push(
        `        hot on the floor Worker, SSE served by the room ${f(w.floor_stream)}${vs(w.p99_vs_node.floor_stream)} · ${w.floor_stream.cpu_us_per_delivery ?? '–'} µs workerd CPU per delivery`,
      )
    if (w.publish_rtt)
      rows.push(
        `        publish round trip, posts 300 ms apart: ${w.publish_rtt.map((r: { subscribers: number; p50: number; p90: number }) => `${r.subscribers} subscribers p50 ${r.p50} / p90 ${r.p90} ms`).join(' · ')}`,
      )
    if (w.hot_via_proxy) rows.push(`        hot via wrangler dev's proxy ${f(w.hot_via_proxy)}`)
    if (w.fanout)
      rows.push(
        `        fan-out ${w.fanout.ceiling_reached ? '' : '≥ '}${w.fanout_events_per_s} deliveries/s · ${w.bytes_per_connection} B of RSS per connected client (floor Worker ${w.floor?.bytes_per_connection ?? '–'}, SSE served by the room ${w.floor_stream?.bytes_per_connection ?? '–'})`,
      )
  }
  console.log(`\n${rows.join('\n')}`)
}

if (value('chart-from')) {
  chartFrom(value('chart-from')!)
  process.exit(0)
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error('bench failed:', err instanceof Error ? err.stack : err)
    killAll()
    process.exit(1)
  })
