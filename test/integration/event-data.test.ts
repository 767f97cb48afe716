import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EVENTS, type UndeliverableMarker } from '../../shared/protocol.ts'
import { startStack, type Shape, type Stack } from '../support/stack.ts'

/**
 * No single event, batch or size may stall a tenant, and data reaches the browser exactly as committed: on both
 * shapes (relay → signed HTTP → edge, and relay + edge in one process).
 */
describe.each<Shape>(['split', 'serve'])('event data and batches (%s)', (shape) => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack({ shape })
  })
  afterAll(() => s?.stop())

  /** The JSON text PostgreSQL stores for an event: what the SSE data line must carry, byte for byte. */
  const stored = async (tenant: string, seq: number) => {
    const [row] = await s.db.sql<{ data: string }[]>`select data::text as data from relay.events where tenant = ${tenant} and seq = ${seq}`
    return row!.data
  }

  it('a deeply nested value is delivered as committed and the events after it still arrive', async () => {
    const sub = await s.subscribe('deep')
    const [deep] = await s.db.sql<
      { seq: string }[]
    >`select relay.publish('deep', 'deep', (repeat('[', 5000) || repeat(']', 5000))::text::jsonb) as seq`
    const after = await s.publish('deep', 'next', { ok: true })
    await sub.waitFor((m) => m.some((x) => x.id === String(after)))
    expect(sub.messages.filter((m) => m.id).map((m) => [m.id, m.event])).toEqual([
      [deep!.seq, 'deep'],
      [String(after), 'next'],
    ])
    expect(sub.messages[0]!.data).toBe('['.repeat(5000) + ']'.repeat(5000))
    sub.close()
  })

  it('numbers arrive exactly: 64-bit ids, huge exponents and trailing zeros are not rewritten', async () => {
    const sub = await s.subscribe('numbers')
    const [row] = await s.db.sql<{ seq: string }[]>`
      select relay.publish('numbers', 'n', '{"id": 12345678901234567890, "big": 1e400, "price": 2.50}'::text::jsonb) as seq`
    const seq = Number(row!.seq)
    await sub.waitFor((m) => m.some((x) => x.id === String(seq)))
    const data = sub.messages.find((m) => m.id === String(seq))!.data
    expect(data).toBe(await stored('numbers', seq))
    expect(data).toContain('"id": 12345678901234567890')
    expect(data).toContain('"price": 2.50')
    expect(data).toContain(`"big": 1${'0'.repeat(400)}`)
    sub.close()
  })

  it('one transaction of 200 events of 60 KB (12 MB, over the edge body limit) arrives whole, in order', async () => {
    const sub = await s.subscribe('bulk')
    const big = 'x'.repeat(60_000)
    await s.db.sql.begin(async (tx) => {
      for (let i = 0; i < 200; i++) await tx`select relay.publish('bulk', 'b', ${JSON.stringify({ i, big })}::text::jsonb)`
    })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 200, 30_000)
    expect(sub.seqs()).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    expect(new Set(sub.messages.map((m) => m.event))).toEqual(new Set(['b']))
    expect(sub.messages.map((m) => (JSON.parse(m.data) as { i: number }).i)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    sub.close()
  })

  it('a backlog of 500 × 17 KB built while the relay was down is delivered once it restarts', async () => {
    await s.stopRelay()
    const data = JSON.stringify({ pad: 'y'.repeat(17_000) })
    await s.db.sql`select relay.publish('backlog', 'b', ${data}::text::jsonb) from generate_series(1, 500)`
    const sub = await s.subscribe('backlog', { lastEventId: 0 })
    await s.startRelay()
    await sub.waitFor((m) => m.filter((x) => x.id).length === 500, 30_000)
    expect(sub.seqs()).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
    sub.close()
  })

  it('an event the edge refuses as too large becomes an `oversize` marker with its seq; the rest flow on', async () => {
    const sub = await s.subscribe('oversize')
    const other = await s.subscribe('oversize', { topics: 'small' })
    const seqs: number[] = []
    await s.db.sql.begin(async (tx) => {
      // The database allows 64 KiB per event by default and this transaction 4 MiB; the edge accepts 1 MiB (its default).
      await tx`select set_config('relay.max_event_bytes', '4194304', true)`
      for (const [topic, size] of [
        ['small', 10],
        ['huge', 1_500_000],
        ['small', 10],
        ['huge', 1_100_000],
        ['small', 10],
      ] as const) {
        const [r] = await tx<
          { seq: string }[]
        >`select relay.publish('oversize', ${topic}, ${JSON.stringify({ pad: 'z'.repeat(size) })}::text::jsonb) as seq`
        seqs.push(Number(r!.seq))
      }
    })
    const after = await s.publish('oversize', 'small', { last: true })
    await sub.waitFor((m) => m.some((x) => x.id === String(after)))
    expect(sub.messages.map((m) => [Number(m.id), m.event])).toEqual([
      [1, 'small'],
      [2, EVENTS.oversize],
      [3, 'small'],
      [4, EVENTS.oversize],
      [5, 'small'],
      [6, 'small'],
    ])
    const marker = JSON.parse(sub.messages[1]!.data) as UndeliverableMarker
    expect(marker).toMatchObject({ topic: 'huge', bytes: (await stored('oversize', 2)).length })
    expect(marker.reason).toMatch(/over 1048576 bytes/)
    // A subscriber to other topics gets no marker for a topic it does not receive.
    await other.waitFor((m) => m.some((x) => x.id === String(after)))
    expect(other.seqs()).toEqual([1, 3, 5, 6])
    // Counted on the relay.
    const metrics = await s.relay!.metrics.registry.getSingleMetric('edge_relay_events_undeliverable_total')!.get()
    expect(metrics.values.filter((v) => v.labels.tenant === 'oversize').reduce((n, v) => n + v.value, 0)).toBe(2)
    sub.close()
    other.close()
  })
})
