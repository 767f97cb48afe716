import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { afterRetry } from '../support/retry.ts'
import { startStack, type Stack } from '../support/stack.ts'

let s: Stack
beforeAll(async () => {
  s = await startStack()
})
afterAll(() => s?.stop())

const events = (h: { messages: { id?: string; event: string; data: string }[] }) =>
  h.messages.filter((m) => m.id !== undefined).map((m) => ({ seq: Number(m.id), topic: m.event, data: JSON.parse(m.data) }))

describe('publish → relay → room → SSE', () => {
  it('delivers a committed event with id = seq, event = topic and the JSON data', async () => {
    const sub = await s.subscribe('acme')
    expect(sub.status).toBe(200)
    expect(sub.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const seq = await s.publish('acme', 'orders', { id: 42, total: 9.5 })
    await sub.waitFor((m) => m.some((x) => x.id === String(seq)))
    expect(events(sub)).toEqual([{ seq, topic: 'orders', data: { id: 42, total: 9.5 } }])
    sub.close()
  })

  it('isolates tenants and filters topics', async () => {
    const a = await s.subscribe('iso-a')
    const aOrders = await s.subscribe('iso-a', { topics: 'orders' })
    const b = await s.subscribe('iso-b')
    await s.publish('iso-a', 'orders', { n: 1 })
    await s.publish('iso-a', 'users', { n: 2 })
    await s.publish('iso-b', 'orders', { n: 3 })
    await a.waitFor((m) => m.filter((x) => x.id).length === 2)
    await b.waitFor((m) => m.filter((x) => x.id).length === 1)
    await aOrders.waitFor((m) => m.filter((x) => x.id).length === 1)
    await s.publish('iso-a', 'users', { n: 4 }) // a sentinel: anything misrouted would have arrived before it
    await a.waitFor((m) => m.filter((x) => x.id).length === 3)
    expect(events(a).map((e) => e.data.n)).toEqual([1, 2, 4])
    expect(events(aOrders).map((e) => [e.topic, e.data.n])).toEqual([['orders', 1]])
    expect(events(b).map((e) => [e.seq, e.data.n])).toEqual([[1, 3]])
    for (const h of [a, aOrders, b]) h.close()
  })

  it('orders by commit: the transaction that started first but commits last gets the later seq; rollbacks leave no hole', async () => {
    const sub = await s.subscribe('txn')
    const sql = s.db.sql
    const t1 = await sql.reserve()
    const t2 = await sql.reserve()
    try {
      await t1`begin`
      await t1`select relay.publish('other', 'x', '{}')` // T1 does work first
      await t2`begin`
      const p2 = t2`select relay.publish('txn', 'a', '{"who":"t2"}') as seq`
      // T1 publishes to the same tenant: it waits on the counter row until T2 commits.
      const p1 = t1`select relay.publish('txn', 'a', '{"who":"t1"}') as seq`
      const [r2] = await p2
      await t2`commit`
      const [r1] = await p1
      await t1`commit`
      expect([Number(r2!.seq), Number(r1!.seq)]).toEqual([1, 2])

      await t1`begin`
      await t1`select relay.publish('txn', 'a', '{"who":"rolled back"}')`
      await t1`rollback`
    } finally {
      t1.release()
      t2.release()
    }
    const seq = await s.publish('txn', 'a', { who: 'after rollback' })
    expect(seq).toBe(3)
    await sub.waitFor((m) => m.filter((x) => x.id).length === 3)
    expect(events(sub).map((e) => [e.seq, e.data.who])).toEqual([
      [1, 't2'],
      [2, 't1'],
      [3, 'after rollback'],
    ])
    sub.close()
  })

  it('carries a 20 kB event intact (beyond NOTIFY’s 8000-byte payload limit)', async () => {
    const sub = await s.subscribe('big')
    const blob = 'x'.repeat(20_000)
    await s.publish('big', 'blob', { blob })
    await sub.waitFor((m) => m.some((x) => x.id))
    expect(events(sub)[0]!.data.blob).toBe(blob)
    sub.close()
  })

  it('resumes after Last-Event-ID exactly, header or query', async () => {
    for (let i = 1; i <= 5; i++) await s.publish('resume', 't', { i })
    const warm = await s.subscribe('resume', { lastEventId: 0 })
    await warm.waitFor((m) => m.filter((x) => x.id).length === 5) // the room has all five
    warm.close()
    const sub = await s.subscribe('resume', { lastEventId: 2 })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 3)
    await s.publish('resume', 't', { i: 6 })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 4)
    expect(sub.seqs()).toEqual([3, 4, 5, 6])
    expect(sub.messages[0]).toBeDefined()
    sub.close()
  })

  it('starts every stream with retry: and sends heartbeats (comment lines)', async () => {
    const res = await fetch(`${s.edge.url}/v1/tenants/hb/events`, {
      headers: { authorization: `Bearer ${await (await import('../support/tokens.ts')).mintToken({ tenant: 'hb' })}` },
    })
    const reader = res.body!.getReader()
    const first = new TextDecoder().decode((await reader.read()).value)
    expect(afterRetry(first)).toBe('')
    s.edge.rooms.room('hb').heartbeat()
    const next = new TextDecoder().decode((await reader.read()).value)
    expect(next).toBe(': hb\n\n')
    await reader.cancel()
  })
})

describe('the SQL contract', () => {
  it('rejects bad tenants, topics, NULL data and oversized data with clear errors, and writes nothing', async () => {
    const sql = s.db.sql
    await expect(sql`select relay.publish('bad tenant!', 't', '{}')`).rejects.toThrow(/invalid tenant/)
    await expect(sql`select relay.publish('ok', 'bad topic', '{}')`).rejects.toThrow(/invalid topic/)
    await expect(sql`select relay.publish('ok', ${'t'.repeat(129)}, '{}')`).rejects.toThrow(/invalid topic/)
    await expect(sql`select relay.publish('ok', 't', null)`).rejects.toThrow(/not SQL NULL/)
    await expect(sql`select relay.publish('ok', 't', ${sql.json({ s: 'x'.repeat(70_000) })})`).rejects.toThrow(
      /over the limit of 65536 bytes/,
    )
    await sql.begin(async (tx) => {
      await tx`select set_config('relay.max_event_bytes', '100000', true)`
      await tx`select relay.publish('limits', 't', ${tx.json({ s: 'x'.repeat(70_000) })})`
    })
    const [row] = await sql`select count(*)::int as n from relay.events where tenant = 'ok'`
    expect(row!.n).toBe(0)
  })

  it('relay.watch publishes {op, id} for inserts, updates and deletes', async () => {
    const sql = s.db.sql
    await sql`create table app_orders (id serial primary key, org text not null, total int)`
    await sql`select relay.watch('app_orders', 'org', 'orders')`
    const sub = await s.subscribe('org1')
    const [row] = await sql<{ id: number }[]>`insert into app_orders (org, total) values ('org1', 5) returning id`
    const id = row!.id
    await sql`update app_orders set total = 6 where id = ${id}`
    await sql`delete from app_orders where id = ${id}`
    await sub.waitFor((m) => m.filter((x) => x.id).length === 3)
    expect(events(sub).map((e) => [e.topic, e.data])).toEqual([
      ['orders', { op: 'INSERT', id }],
      ['orders', { op: 'UPDATE', id }],
      ['orders', { op: 'DELETE', id }],
    ])
    await expect(sql`select relay.watch('app_orders', 'nope', 'orders')`).rejects.toThrow(/has no column "?nope/)
    sub.close()
  })

  it('migrations applied twice are a no-op', async () => {
    const { migrate } = await import('../../relay/migrate.ts')
    expect(await migrate(s.db.sql)).toEqual([])
  })
})

describe('token expiry on a live stream', () => {
  it('ends the stream with event: reauth when the token expires; a new token resumes without a gap', async () => {
    const { mintToken } = await import('../support/tokens.ts')
    const { openStream } = await import('../support/sse-client.ts')
    const url = `${s.edge.url}/v1/tenants/expiring/events`
    const short = await mintToken({ tenant: 'expiring' }, { expiresIn: Math.floor(Date.now() / 1000) + 2 })
    const sub = await openStream(url, { authorization: `Bearer ${short}` })
    await s.publish('expiring', 't', { i: 1 })
    await sub.waitFor((m) => m.some((x) => x.id === '1'))
    await sub.ended
    expect(sub.messages.at(-1)).toMatchObject({ event: 'reauth' })
    await s.publish('expiring', 't', { i: 2 }) // published while the client has no stream
    const renewed = await openStream(url, { authorization: `Bearer ${await mintToken({ tenant: 'expiring' })}`, 'last-event-id': '1' })
    await renewed.waitFor((m) => m.some((x) => x.id === '2'))
    expect(renewed.seqs()).toEqual([2])
    renewed.close()
  })
})
