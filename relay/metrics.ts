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

/**
 * The relay's Prometheus metrics (prom-client, one registry per relay so tests can run several in a process).
 * Counters move as events flow; the backlog gauge queries at scrape time.
 */
export const relayMetrics = () => {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })
  const m = {
    registry,
    read: new Counter({
      name: 'edge_relay_events_read_total',
      help: 'Events read from the outbox, per tenant (resends included)',
      labelNames: ['tenant'],
      registers,
    }),
    delivered: new Counter({
      name: 'edge_relay_events_delivered_total',
      help: 'Events an edge confirmed, per tenant and edge',
      labelNames: ['tenant', 'edge'],
      registers,
    }),
    commitLag: new Histogram({
      name: 'edge_relay_commit_to_relay_seconds',
      help: 'From an event’s created_at to the relay reading it',
      buckets: LAG_BUCKETS,
      registers,
    }),
    postSeconds: new Histogram({
      name: 'edge_relay_relay_to_edge_seconds',
      help: 'Round trip of one signed publish POST to an edge',
      labelNames: ['edge', 'outcome'],
      buckets: LAG_BUCKETS,
      registers,
    }),
    batch: new Histogram({
      name: 'edge_relay_batch_events',
      help: 'Events per publish batch posted to an edge',
      buckets: BATCH_BUCKETS,
      registers,
    }),
    undeliverable: new Counter({
      name: 'edge_relay_events_undeliverable_total',
      help: 'Events an edge refused (too large, invalid), delivered as a marker frame with their seq instead',
      labelNames: ['tenant', 'edge', 'reason'],
      registers,
    }),
    reconnects: new Counter({
      name: 'edge_relay_listener_reconnects_total',
      help: 'Times the LISTEN connection was re-established after the first',
      registers,
    }),
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
  const registers = [m.registry]
  new Gauge({
    name: 'edge_relay_listening',
    help: '1 when the LISTEN connection is up',
    registers,
    collect() {
      this.set(src.listening() ? 1 : 0)
    },
  })
  new Gauge({
    name: 'edge_relay_edge_failures',
    help: 'Consecutive failed publish POSTs per edge (0 when it answers)',
    labelNames: ['edge'],
    registers,
    collect() {
      for (const e of src.edges()) this.set({ edge: e.url }, e.failures)
    },
  })
  new Gauge({
    name: 'edge_relay_backlog_events',
    help: 'Events committed but not yet confirmed by the edge, over all tenants',
    labelNames: ['edge'],
    registers,
    async collect() {
      for (const e of src.edges()) {
        const n = await withTimeout(src.backlog(e.url), SCRAPE_TIMEOUT_MS).catch(() => undefined)
        if (n !== undefined) this.set({ edge: e.url }, n)
      }
    },
  })
  new Gauge({
    name: 'edge_relay_delivery_lag_seconds',
    help: 'Age of the oldest committed event the edge has not confirmed (0 when caught up): a stalled tenant shows here',
    labelNames: ['edge'],
    registers,
    collect() {
      for (const [edge, s] of src.lag()) this.set({ edge }, s)
    },
  })
  new Gauge({
    name: 'edge_relay_notification_queue_usage',
    help: 'pg_notification_queue_usage(): fraction of the NOTIFY queue in use (a stuck listener fills it)',
    registers,
    collect() {
      const usage = src.queueUsage()
      if (usage !== undefined) this.set(usage)
    },
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
