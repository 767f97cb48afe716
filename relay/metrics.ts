import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { WireEvent } from '../shared/schema.ts'
import { withTimeout } from './timing.ts'

/** Seconds buckets from 1 ms to 1 min: lag is sub-millisecond when healthy and minutes during an outage. */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000]

export interface RelayMetricSources {
  listening: () => boolean
  edges: () => { url: string; failures: number; busy: number }[]
  /** Events committed but not yet confirmed by each edge. */
  backlog: (edge: string) => Promise<number>
  /** pg_notification_queue_usage() as last sampled by the relay (undefined before the first sample). */
  queueUsage: () => number | undefined
  /** Per edge, seconds since the oldest event it has not confirmed was committed, as last sampled. */
  lag: () => ReadonlyMap<string, number>
}

/** The relay's Prometheus metrics: one registry per relay, so tests can run several in a process. */
export const relayMetrics = () => {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) => new Counter({ name, help, labelNames, registers })
  const histogram = <L extends string>(name: string, help: string, labelNames: L[] = [], buckets = LAG_BUCKETS) =>
    new Histogram({ name, help, buckets, labelNames, registers })
  const m = {
    registry,
    read: counter('edge_relay_events_read_total', 'Events read from the outbox, per tenant (resends included)', ['tenant']),
    delivered: counter('edge_relay_events_delivered_total', 'Events an edge confirmed, per tenant and edge', ['tenant', 'edge']),
    commitLag: histogram('edge_relay_commit_to_relay_seconds', 'From an event’s created_at to the relay reading it'),
    postSeconds: histogram('edge_relay_relay_to_edge_seconds', 'Round trip of one signed publish POST to an edge', ['edge', 'outcome']),
    batch: histogram('edge_relay_batch_events', 'Events per publish batch posted to an edge', [], BATCH_BUCKETS),
    undeliverable: counter(
      'edge_relay_events_undeliverable_total',
      'Events an edge refused (too large, invalid), delivered as a marker frame with their seq instead',
      ['tenant', 'edge', 'reason'],
    ),
    reconnects: counter('edge_relay_listener_reconnects_total', 'Times the LISTEN connection was re-established after the first'),
    /** Set by the leader election: 1 while this relay holds the lock and listens, 0 (from the start) as standby. */
    leader: new Gauge({
      name: 'edge_relay_leader',
      help: '1 when this relay is the leader (holds the one LISTEN), 0 when standby',
      registers,
    }),
  }
  m.leader.set(0)
  return m
}

export type RelayMetrics = ReturnType<typeof relayMetrics>

/** Registers the scrape-time gauges that read live state. */
export const attachSources = (m: RelayMetrics, src: RelayMetricSources) => {
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect: (g: Gauge<L>) => void | Promise<void>) => {
    const g: Gauge<L> = new Gauge({ name, help, labelNames, registers: [m.registry], collect: () => collect(g) })
  }
  gauge('edge_relay_listening', '1 when the LISTEN connection is up', [], (g) => g.set(src.listening() ? 1 : 0))
  gauge('edge_relay_edge_failures', 'Consecutive failed publish POSTs per edge (0 when it answers)', ['edge'], (g) => {
    for (const e of src.edges()) g.set({ edge: e.url }, e.failures)
  })
  gauge('edge_relay_backlog_events', 'Events committed but not yet confirmed by the edge, over all tenants', ['edge'], async (g) => {
    for (const e of src.edges()) {
      const n = await withTimeout(src.backlog(e.url), SCRAPE_TIMEOUT_MS).catch(() => undefined)
      if (n !== undefined) g.set({ edge: e.url }, n)
    }
  })
  const lagHelp = 'Age of the oldest committed event the edge has not confirmed (0 when caught up): a stalled tenant shows here'
  gauge('edge_relay_delivery_lag_seconds', lagHelp, ['edge'], (g) => {
    for (const [edge, s] of src.lag()) g.set({ edge }, s)
  })
  const queueHelp = 'pg_notification_queue_usage(): fraction of the NOTIFY queue in use (a stuck listener fills it)'
  gauge('edge_relay_notification_queue_usage', queueHelp, [], (g) => {
    const usage = src.queueUsage()
    if (usage !== undefined) g.set(usage)
  })
}

/** Observes the commit → relay lag of events just read. */
export const observeRead = (m: RelayMetrics, tenant: string, events: readonly WireEvent[]) => {
  if (events.length === 0) return
  m.read.inc({ tenant }, events.length)
  const now = Date.now()
  for (const e of events) m.commitLag.observe(Math.max(0, now - e.ts) / 1000)
}

/** A scrape must answer even when Postgres does not: the backlog gauge then keeps its last value. */
const SCRAPE_TIMEOUT_MS = 2_000
