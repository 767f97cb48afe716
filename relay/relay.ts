import postgres from 'postgres'
import type { Log } from '../shared/log.ts'
import type { RelayConfig } from './config.ts'
import { Deliverer } from './deliver.ts'
import { postBatch } from './forward.ts'
import { startListener } from './listener.ts'
import { attachSources, observeRead, relayMetrics } from './metrics.ts'
import { outbox as makeOutbox } from './outbox.ts'

export interface RelayOptions {
  config: RelayConfig
  log: Log
}

/**
 * The relay: one LISTEN connection, a small query pool, and a Deliverer per edge. Every (re)LISTEN and every sweep
 * catches up all tenants whose head is past an edge's cursor, so a missed nudge costs latency, never data.
 */
export const startRelay = async ({ config, log }: RelayOptions) => {
  const sql = postgres(config.DATABASE_URL, {
    max: 4,
    onnotice: () => {},
    connection: { application_name: 'edge-relay' },
  })
  const [schema] = await sql<{ ok: boolean }[]>`select to_regclass('relay.events') is not null as ok`
  if (!schema?.ok) {
    await sql.end()
    throw new Error('relay schema is missing: run `npm run migrate` against DATABASE_URL first')
  }
  const metrics = relayMetrics()
  const plainOutbox = makeOutbox(sql)
  const outbox: typeof plainOutbox = {
    ...plainOutbox,
    after: async (tenant, after, limit) => {
      const events = await plainOutbox.after(tenant, after, limit)
      observeRead(metrics, tenant, events)
      return events
    },
  }
  const timedPost = async (edge: string, body: Parameters<typeof postBatch>[2], signal: AbortSignal) => {
    metrics.batch.observe(body.events.length)
    const end = metrics.postSeconds.startTimer({ edge })
    try {
      const reply = await postBatch(edge, config.RELAY_SECRET, body, signal)
      end({ outcome: 'ok' })
      return reply
    } catch (err) {
      end({ outcome: 'error' })
      throw err
    }
  }
  const deliverers = config.EDGE_URL.map(
    (edge) =>
      new Deliverer({
        edge,
        outbox,
        post: (body, signal) => timedPost(edge, body, signal),
        onDelivered: (tenant, events) => metrics.delivered.inc({ tenant, edge }, events),
        batchSize: config.RELAY_BATCH_SIZE,
        retryCapMs: config.RELAY_RETRY_CAP_MS,
        resendMax: config.RELAY_RESEND_MAX,
        log,
      }),
  )

  const catchUp = async () => {
    for (const d of deliverers) for (const { tenant } of await outbox.behind(d.edge)) d.nudge(tenant)
  }
  const safely = (what: string, p: Promise<unknown>) =>
    p.catch((err) => log('warn', `${what} failed`, { err: String(err) }))

  let listens = 0
  const listener = startListener({
    url: config.DATABASE_URL,
    pingMs: config.RELAY_SWEEP_MS,
    log,
    onNudge: (tenant) => {
      for (const d of deliverers) d.nudge(tenant)
    },
    onListen: () => {
      if (listens++ > 0) metrics.reconnects.inc()
      void safely('catch-up', catchUp())
    },
  })
  await listener.ready
  attachSources(metrics, {
    sql,
    listening: () => listener.listening,
    edges: () => deliverers.map((d) => ({ url: d.edge, failures: d.failures, busy: d.busy })),
    backlog: async (edge) => (await plainOutbox.behind(edge)).reduce((n, t) => n + t.head - t.delivered, 0),
  })

  const sweep = setInterval(() => {
    void safely('sweep', catchUp())
    void safely('listener watchdog', listener.watchdog(sql))
  }, config.RELAY_SWEEP_MS)

  let stopped: Promise<void> | undefined
  return {
    /** Prometheus metrics; `metrics.leader` is the gauge a standby sets to 0. */
    metrics,
    health: () => ({
      ok: listener.listening,
      role: 'leader' as const,
      listening: listener.listening,
      edges: deliverers.map((d) => ({ url: d.edge, failures: d.failures, busy: d.busy })),
    }),
    /** Finishes the batches in flight, then closes every connection. */
    stop(): Promise<void> {
      stopped ??= (async () => {
        clearInterval(sweep)
        await listener.close()
        await Promise.all(deliverers.map((d) => d.stop()))
        await sql.end({ timeout: 5 })
      })()
      return stopped
    },
  }
}

export type Relay = Awaited<ReturnType<typeof startRelay>>
