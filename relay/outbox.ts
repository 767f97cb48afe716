import type { Sql } from 'postgres'
import type { WireEvent } from '../shared/schema.ts'

/** SQL reads and writes the relay makes. The relay reads rows; the NOTIFY payload is never trusted for data. */
export const outbox = (sql: Sql) => ({
  /** Up to `limit` events of a tenant after `after`, in seq order, shaped for the wire. */
  async after(tenant: string, after: number, limit: number): Promise<WireEvent[]> {
    const rows = await sql<{ seq: string; topic: string; data: unknown; ts: string }[]>`
      select seq, topic, data, (extract(epoch from created_at) * 1000)::float8 as ts
      from relay.events where tenant = ${tenant} and seq > ${after}
      order by seq limit ${limit}`
    return rows.map((r) => ({ seq: Number(r.seq), topic: r.topic, data: r.data, ts: Number(r.ts) }))
  },

  /** Tenants whose head is past this edge's delivered cursor. */
  async behind(edge: string): Promise<{ tenant: string; head: number; delivered: number }[]> {
    const rows = await sql<{ tenant: string; head: string; delivered: string }[]>`
      select h.tenant, h.seq as head, coalesce(c.delivered, 0) as delivered
      from relay.heads h left join relay.cursors c on c.edge = ${edge} and c.tenant = h.tenant
      where h.seq > coalesce(c.delivered, 0)`
    return rows.map((r) => ({ tenant: r.tenant, head: Number(r.head), delivered: Number(r.delivered) }))
  },

  async cursor(edge: string, tenant: string): Promise<number> {
    const [row] = await sql<{ delivered: string }[]>`
      select delivered from relay.cursors where edge = ${edge} and tenant = ${tenant}`
    return row ? Number(row.delivered) : 0
  },

  /** Saves many tenants' cursors for one edge in one statement (one commit instead of one per batch). */
  async saveCursors(edge: string, cursors: ReadonlyMap<string, number>): Promise<void> {
    if (cursors.size === 0) return
    const rows = JSON.stringify([...cursors].map(([tenant, delivered]) => ({ tenant, delivered })))
    await sql`
      insert into relay.cursors (edge, tenant, delivered)
      select ${edge}, r.tenant, r.delivered from json_to_recordset(${rows}::text::json) as r(tenant text, delivered bigint)
      on conflict (edge, tenant) do update set delivered = excluded.delivered, updated_at = now()`
  },
})

export type Outbox = ReturnType<typeof outbox>
