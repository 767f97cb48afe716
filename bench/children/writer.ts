import postgres from 'postgres'
import { BATCH_EVENTS } from '../../shared/protocol.ts'
import { sign } from '../../shared/sign.ts'
import { serveChild } from '../lib/child.ts'
import { nowMs } from '../lib/hist.ts'

/**
 * Publishes events at a fixed rate, spread round-robin over tenants. Each event's data carries `t`, this
 * machine's monotonic clock read just before the statement is sent; the statement runs in autocommit, so it is
 * its own transaction and COMMIT follows it directly.
 *   ours      select relay.publish(tenant, 'bench', data)              (the relay delivers it to our edge)
 *   baseline  insert into bench_log … ; select pg_notify('baseline', {tenant, topic, data})   (Logtide-style)
 *   floor     select pg_notify('floor', data)                          (commit → a bare LISTEN)
 *   floor-publish  select relay.publish(tenant, 'bench', data), pg_notify('floor', data) with relay.notify = 'off'
 *             (the same, for a transaction that publishes: its rows are written and flushed to the WAL at commit, as
 *             ours are, and it sends one NOTIFY, which carries the data: the floor server's feed)
 *   edge/raw  signed POST /internal/publish to our edge, or POST /publish to the plain node:http reference,
 *             one batch of at most BATCH_EVENTS in flight at a time (as the relay posts): the edge alone, without
 *             Postgres.
 */
const PAD = 'x'.repeat(64)
const data = () => `{"p":"${PAD}","t":${nowMs().toFixed(4)}}`

/** Per edge and tenant: the seq of the last event posted (rooms need contiguous seqs across runs). */
const seqs = new Map<string, number>()

const sql = postgres(process.env.DATABASE_URL!, { max: 8, onnotice: () => {} })
/** Poll mode's writers: sessions with relay.notify = 'off', so publish() sends no NOTIFY. */
const quiet = postgres(process.env.DATABASE_URL!, { max: 8, onnotice: () => {}, connection: { 'relay.notify': 'off' } })

interface RunArgs {
  mode: 'ours' | 'baseline' | 'floor' | 'floor-publish' | 'edge' | 'raw'
  rate: number
  seconds: number
  tenants: string[]
  url?: string
  secret?: string
  /** false: publish with relay.notify = 'off' (poll mode). */
  notify?: boolean
}

const sendPg = (mode: RunArgs['mode'], tenant: string, notify: boolean): Promise<unknown> => {
  const d = data()
  if (mode === 'ours') return (notify ? sql : quiet)`select relay.publish(${tenant}, 'bench', ${d}::text::jsonb)`
  if (mode === 'baseline')
    return sql`with ins as (insert into bench_log (tenant, topic, data) values (${tenant}, 'bench', ${d}::text::jsonb))
      select pg_notify('baseline', ${`{"tenant":"${tenant}","topic":"bench","data":${d}}`})`
  // relay.notify = 'off': the event's own NOTIFY carries its data, so the transaction sends one, as ours does.
  if (mode === 'floor-publish') return quiet`select relay.publish(${tenant}, 'bench', ${d}::text::jsonb), pg_notify('floor', ${d})`
  return sql`select pg_notify('floor', ${d})`
}

const run = async ({ mode, rate, seconds, tenants, url, secret, notify = true }: RunArgs) => {
  const start = Date.now()
  const total = Math.round(rate * seconds)
  let sent = 0
  let ok = 0
  let errors = 0
  let firstError: string | undefined
  const inflight = new Set<Promise<unknown>>()
  let posting: Promise<void> | undefined
  const backlog: string[] = [] // tenants of events due but not yet posted (edge/raw)

  const post = async (batch: string[]) => {
    const byTenant = new Map<string, string[]>()
    for (const t of batch) byTenant.set(t, [...(byTenant.get(t) ?? []), data()])
    for (const [tenant, datas] of byTenant) {
      let seq = seqs.get(url + tenant) ?? 0
      // Event data travels as JSON text (a string), as the relay sends it: to our edge and the plain server alike.
      const events = datas.map((d) => `{"seq":${++seq},"topic":"bench","data":${JSON.stringify(d)},"ts":0}`)
      seqs.set(url + tenant, seq)
      const body = `{"tenant":"${tenant}","events":[${events.join(',')}]}`
      const path = mode === 'edge' ? '/internal/publish' : '/publish'
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (mode === 'edge') headers['x-relay-signature'] = await sign(secret!, body)
      const res = await fetch(url + path, { method: 'POST', headers, body })
      await res.text()
      if (res.ok) ok += datas.length
      else (errors += datas.length), (firstError ??= `HTTP ${res.status}`)
    }
  }

  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - start) * rate) / 1000))
    for (; sent < due; sent++) {
      const tenant = tenants[sent % tenants.length]!
      if (mode === 'edge' || mode === 'raw') backlog.push(tenant)
      else {
        const p = sendPg(mode, tenant, notify).then(
          () => void ok++,
          (err) => (errors++, (firstError ??= String(err))),
        )
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
      }
    }
    if (backlog.length && !posting) {
      // At most BATCH_EVENTS a post, as the relay caps its batches: a backlog goes out in several.
      const batch = backlog.splice(0, BATCH_EVENTS)
      posting = post(batch).finally(() => (posting = undefined))
    }
    await new Promise((r) => setTimeout(r, mode === 'edge' || mode === 'raw' ? 5 : 1))
  }
  await posting
  while (backlog.length) await post(backlog.splice(0, BATCH_EVENTS))
  await Promise.all(inflight)
  return { published: ok, errors, firstError, ms: Date.now() - start }
}

serveChild({ run: (m) => run(m as unknown as RunArgs) }, () =>
  Promise.all([sql.end({ timeout: 1 }), quiet.end({ timeout: 1 })]).then(() => {}),
).ready({})
