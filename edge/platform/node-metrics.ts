import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Room } from '../room/room.ts'
import type { RoomsObserver } from '../room/stub.ts'

const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const FLUSH_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000]

/**
 * The Node edge's Prometheus metrics (prom-client: Node only). What rooms count already (deliveries, slow drops) and subscriber counts are
 * read at scrape time, so the hot path pays one integer increment per delivery and nothing else.
 */
export const edgeMetrics = (rooms: () => ReadonlyMap<string, Room>) => {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })
  const received = new Counter({
    name: 'edge_relay_edge_events_received_total',
    help: 'New events rooms accepted from the relay (resent duplicates excluded), per tenant',
    labelNames: ['tenant'],
    registers,
  })
  const histogram = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, buckets, registers })
  const lag = histogram(
    'edge_relay_edge_commit_lag_seconds',
    'From an event’s created_at in Postgres to its room on this edge',
    LAG_BUCKETS,
  )
  const flush = histogram(
    'edge_relay_edge_flush_seconds',
    'Time to write one event-loop turn’s frames to every subscriber that had some: the fan-out of a publish (whole process)',
    FLUSH_BUCKETS,
  )
  const batch = histogram('edge_relay_edge_batch_events', 'Events per publish batch received from the relay', BATCH_BUCKETS)
  const connects = new Counter({
    name: 'edge_relay_edge_connections_total',
    help: 'SSE connections opened, per tenant; kind="resume" when they carried a Last-Event-ID (reconnects)',
    labelNames: ['tenant', 'kind'],
    registers,
  })
  const roomCounter = (name: string, help: string, read: (room: Room) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['tenant'],
      registers,
      collect() {
        this.reset()
        for (const [tenant, room] of rooms()) this.inc({ tenant }, read(room))
      },
    })
  roomCounter('edge_relay_edge_events_delivered_total', 'Event frames written to subscribers, per tenant', (r) => r.delivered)
  roomCounter(
    'edge_relay_edge_slow_subscribers_dropped_total',
    'Subscribers dropped because their queue filled up, per tenant',
    (r) => r.slowDropped,
  )
  new Gauge({
    name: 'edge_relay_edge_subscribers',
    help: 'Connected subscribers per tenant and topic (topic "*" = all topics; one subscriber may count under several topics)',
    labelNames: ['tenant', 'topic'],
    registers,
    collect() {
      this.reset()
      for (const [tenant, room] of rooms()) for (const [topic, n] of Object.entries(room.presence().topics)) this.set({ tenant, topic }, n)
    },
  })
  new Gauge({
    name: 'edge_relay_edge_connected',
    help: 'Connected subscribers per tenant',
    labelNames: ['tenant'],
    registers,
    collect() {
      this.reset()
      for (const [tenant, room] of rooms()) if (room.size > 0) this.set({ tenant }, room.size)
    },
  })

  /** Counted as it happens, by the rooms (see RoomsObserver). */
  const observe: RoomsObserver = {
    published(tenant, body, fresh) {
      batch.observe(body.events.length)
      const now = Date.now()
      for (const e of fresh) lag.observe(Math.max(0, now - e.ts) / 1000)
      if (fresh.length > 0) received.inc({ tenant }, fresh.length)
    },
    connected: (tenant, resume) => connects.inc({ tenant, kind: resume ? 'resume' : 'new' }),
  }

  /** Records a fan-out flush (wired to node-sse.ts's observeFlushes by the Node edge). */
  const flushed = (_subscribers: number, ms: number) => flush.observe(ms / 1000)

  return { registry, observe, flushed }
}
