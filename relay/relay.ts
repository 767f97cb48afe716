import postgres from 'postgres'
import type { Log } from '../shared/log.ts'
import type { RelayConfig } from './config.ts'
import { Deliverer } from './deliver.ts'
import { postBatch } from './forward.ts'
import { startListener } from './listener.ts'
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
  const outbox = makeOutbox(sql)
  const deliverers = config.EDGE_URL.map(
    (edge) =>
      new Deliverer({
        edge,
        outbox,
        post: (body, signal) => postBatch(edge, config.RELAY_SECRET, body, signal),
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

  const listener = startListener({
    url: config.DATABASE_URL,
    pingMs: config.RELAY_SWEEP_MS,
    log,
    onNudge: (tenant) => {
      for (const d of deliverers) d.nudge(tenant)
    },
    onListen: () => void safely('catch-up', catchUp()),
  })
  await listener.ready

  const sweep = setInterval(() => {
    void safely('sweep', catchUp())
    void safely('listener watchdog', listener.watchdog(sql))
  }, config.RELAY_SWEEP_MS)

  let stopped: Promise<void> | undefined
  return {
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
