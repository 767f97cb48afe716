import type { Sql } from 'postgres'
import type { WireEvent } from '../shared/schema.ts'

/** A tenant's head as poll mode reads it: its seq, and the stamp its last publish took. */
export interface Change {
  tenant: string
  seq: number
  stamp: number
}

/** SQL reads and writes the relay makes. The relay reads rows; the NOTIFY payload is never trusted for data. */
export const outbox = (sql: Sql) => ({
  /**
   * Events of a tenant after `after`, in seq order, shaped for the wire: at most `limit` and, past the first, at most
   * `maxBytes` of data (a batch the edge refuses as too large would stall the tenant). `more`: the read stopped at a
   * bound. Data is read as text (`data::text`), never parsed: it reaches the browser exactly as PostgreSQL stores it.
   */
  async after(tenant: string, after: number, limit: number, maxBytes: number): Promise<{ events: WireEvent[]; more: boolean }> {
    // The scan stops at `limit` rows whatever the backlog, each turned into text once. A row is kept while the bytes
    // before it are under the cap (so the first always is); the caller sizes `limit` so few are converted for nothing.
    const rows = await sql<{ seq: string; topic: string; data: string; ts: number; n: string }[]>`
      with e as (
        select seq, topic, data, created_at, sum(octet_length(data)) over (order by seq) - octet_length(data) as before
        from (
          select seq, topic, data::text as data, created_at from relay.events
          where tenant = ${tenant} and seq > ${after} order by seq limit ${limit}) r)
      select seq, topic, data, (extract(epoch from created_at) * 1000)::float8 as ts, (select count(*) from e) as n
      from e where before < ${maxBytes} order by seq`
    const read = rows.length === 0 ? 0 : Number(rows[0]!.n)
    return {
      events: rows.map((r) => ({ seq: Number(r.seq), topic: r.topic, data: r.data, ts: Number(r.ts) })),
      more: read === limit || rows.length < read,
    }
  },

  /** Tenants whose head is past this edge's delivered cursor. */
  async behind(edge: string): Promise<{ tenant: string; head: number; delivered: number }[]> {
    const rows = await sql<{ tenant: string; head: string; delivered: string }[]>`
      select h.tenant, h.seq as head, coalesce(c.delivered, 0) as delivered
      from relay.heads h left join relay.cursors c on c.edge = ${edge} and c.tenant = h.tenant
      where h.seq > coalesce(c.delivered, 0)`
    return rows.map((r) => ({ tenant: r.tenant, head: Number(r.head), delivered: Number(r.delivered) }))
  },

  /**
   * Heads stamped after `after` (migrations/0005_change_stamps.sql), oldest stamp first: what changed since a
   * poll, read through the stamp index, so its cost follows the changes, not the number of tenants.
   */
  async changedHeads(after: number): Promise<Change[]> {
    const rows = await sql<{ tenant: string; seq: string; stamp: string }[]>`
      select tenant, seq, stamp from relay.heads where stamp > ${after} order by stamp`
    return rows.map((r) => ({ tenant: r.tenant, seq: Number(r.seq), stamp: Number(r.stamp) }))
  },

  /** The highest stamp of a committed head (0 when none has one yet). */
  async lastStamp(): Promise<number> {
    const [row] = await sql<{ stamp: string | null }[]>`select max(stamp) as stamp from relay.heads`
    return Number(row?.stamp ?? 0)
  },

  async cursor(edge: string, tenant: string): Promise<number> {
    const [row] = await sql<{ delivered: string }[]>`
      select delivered from relay.cursors where edge = ${edge} and tenant = ${tenant}`
    return row ? Number(row.delivered) : 0
  },

  /** Tenants this edge has been delivered anything of (their rooms have something to lose). */
  async deliveredTenants(edge: string): Promise<string[]> {
    const rows = await sql<{ tenant: string }[]>`select tenant from relay.cursors where edge = ${edge} and delivered > 0`
    return rows.map((r) => r.tenant)
  },

  /** The rooms instance this edge answered when last checked (see relay.edges). */
  async edgeInstance(edge: string): Promise<string | undefined> {
    const [row] = await sql<{ instance: string }[]>`select instance from relay.edges where edge = ${edge}`
    return row?.instance
  },

  async saveEdgeInstance(edge: string, instance: string): Promise<void> {
    await sql`
      insert into relay.edges (edge, instance) values (${edge}, ${instance})
      on conflict (edge) do update set instance = excluded.instance, checked_at = now()`
  },

  /** Age in seconds of the oldest event this edge has not confirmed (0 when caught up): one stalled tenant shows here. */
  async lagSeconds(edge: string): Promise<number> {
    const [row] = await sql<{ lag: number }[]>`
      select coalesce(extract(epoch from now() - min(e.created_at)), 0)::float8 as lag
      from relay.heads h
      left join relay.cursors c on c.edge = ${edge} and c.tenant = h.tenant
      cross join lateral (
        select created_at from relay.events e
        where e.tenant = h.tenant and e.seq > coalesce(c.delivered, 0) order by seq limit 1) e
      where h.seq > coalesce(c.delivered, 0)`
    return Math.max(0, Number(row?.lag ?? 0))
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
