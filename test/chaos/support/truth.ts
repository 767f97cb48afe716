import type { Sql } from 'postgres'
import { LISTEN_APPLICATION } from '../../../relay/listener.ts'
import { until } from './cluster.ts'
import type { ChaosClient } from './traffic.ts'

export type Heads = Record<string, number>
export interface Committed {
  seq: number
  topic: string
}

/** Whether a client's topic filter takes this event. */
export const wants = (c: ChaosClient, e: { topic: string }) => !c.o.topics || c.o.topics.includes(e.topic)

/** What the database says: heads, committed events, LISTEN sessions. The ledger compares clients with this. */
export const truth = (sql: Sql, tenants: readonly string[]) => {
  const heads = async (): Promise<Heads> => {
    const rows = await sql<{ tenant: string; seq: string }[]>`select tenant, seq from relay.heads`
    return Object.fromEntries(tenants.map((t) => [t, Number(rows.find((r) => r.tenant === t)?.seq ?? 0)]))
  }

  /** The committed events of a tenant in (lo, hi]. */
  const committed = async (tenant: string, lo: number, hi: number): Promise<Committed[]> =>
    (
      await sql<{ seq: string; topic: string }[]>`
      select seq, topic from relay.events where tenant = ${tenant} and seq > ${lo} and seq <= ${hi} order by seq`
    ).map((r) => ({ seq: Number(r.seq), topic: r.topic }))

  const listeners = async () =>
    (
      await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = ${LISTEN_APPLICATION}`
    )[0]!.n

  /** Waits until every client has every event of its tenant and topics up to `h`. */
  const caughtUp = async (clients: ChaosClient[], h: Heads, timeoutMs: number) => {
    const targets = new Map<ChaosClient, number>()
    for (const t of tenants) {
      const mine = clients.filter((c) => c.o.tenant === t)
      if (mine.length === 0) continue
      const events = await committed(t, Math.min(...mine.map((c) => c.from), h[t]!), h[t]!)
      for (const c of mine) targets.set(c, events.filter((e) => e.seq > c.from && wants(c, e)).at(-1)?.seq ?? 0)
    }
    await until('every subscriber to catch up', () => clients.every((c) => c.maxSeq >= targets.get(c)!), timeoutMs)
  }

  return { heads, committed, listeners, caughtUp }
}
