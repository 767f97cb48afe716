/**
 * KV rooms against Deno KV's limits (a value of 64 KiB, an atomic operation of 1000 mutations, 80 KiB of keys and
 * 800 KiB in all), the trims, a resend racing from another instance, and what a publish and a connect cost in KV
 * operations (docs/deno.md quotes these counts).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { RelayError } from '../../../shared/errors.ts'
import type { PublishBody, WireEvent } from '../../../shared/schema.ts'
import { sign } from '../../../shared/sign.ts'
import { encodeFrame } from '../../../shared/sse.ts'
import { countingKv, tempKv } from '../../../test/support/kv.ts'
import { edgeSettings } from '../../../test/support/settings.ts'
import { createEdge } from '../../create.ts'
import { kvRooms } from './kv-rooms.ts'
import { appendBatch, eventKey, type KvHistoryBounds, maxFrameBytes, readEvents, readHead } from './store.ts'

const db = tempKv()
afterAll(() => db.close())

const kept: KvHistoryBounds = { limit: 10_000, maxAgeMs: 86_400_000 }
const ev = (seq: number, data = JSON.stringify({ seq }), topic = 't'): WireEvent => ({ seq, topic, data, ts: Date.now() })
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const body = (tenant: string, events: WireEvent[], rebase?: boolean): PublishBody => ({ tenant, events, ...(rebase ? { rebase } : {}) })
const quiet = () => {}
const until = async (what: string, pred: () => boolean) => {
  const deadline = Date.now() + 10_000
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('KV rooms and Deno KV limits', () => {
  it('splits a batch over 800 KiB into several atomic operations, each moving the head', async () => {
    const { kv, counts } = countingKv(await db.open())
    const big = (seq: number) => ev(seq, JSON.stringify({ seq, pad: 'x'.repeat(60_000) }))
    const { head, written } = await appendBatch(kv, body('big', range(1, 20).map(big)), kept)
    expect(head).toBe(20)
    expect(written.map((e) => e.seq)).toEqual(range(1, 20))
    expect(counts.commits).toBeGreaterThanOrEqual(2) // 20 × 60 kB = 1.2 MB
    expect((await readEvents(kv, 'big', 0, 20)).map((e) => e.seq)).toEqual(range(1, 20))
    expect(counts.expiring).toBe(20)
    expect(counts.expireIn).toBe(86_400_000)
  })

  it('splits a batch over 1000 mutations or 80 KiB of keys', async () => {
    const { kv, counts } = countingKv(await db.open())
    const tenant = 'many-events-of-a-tenant-with-a-long-name-0123456789-0123456789-x'
    const { head } = await appendBatch(
      kv,
      body(
        tenant,
        range(1, 2500).map((s) => ev(s)),
      ),
      { limit: 1000, maxAgeMs: 0 },
    )
    expect(head).toBe(2500)
    expect(counts.commits).toBeGreaterThanOrEqual(5)
    expect(counts.expiring).toBe(0) // HISTORY_MAX_AGE_S=0: no expiry
    // Trimmed by count as it went: the newest 1000 are held.
    expect((await readEvents(kv, tenant, 0, 2500)).map((e) => e.seq)).toEqual(range(1501, 2500))
  })

  it('refuses an event whose frame does not fit one KV value, writing nothing of its batch', async () => {
    const kv = await db.open()
    const exact = (seq: number) => {
      const framing = encodeFrame(seq, 'orders', '').byteLength
      return ev(seq, `"${'y'.repeat(maxFrameBytes('orders') - framing - 2)}"`, 'orders')
    }
    const over = (seq: number) => ({ ...exact(seq), data: `${exact(seq).data} ` })
    await expect(appendBatch(kv, body('huge', [ev(1), over(2)]), kept)).rejects.toThrow(RelayError)
    await expect(appendBatch(kv, body('huge', [ev(1), over(2)]), kept)).rejects.toMatchObject({ code: 'TOO_LARGE' })
    expect((await readHead(kv, 'huge')).head.seq).toBe(0)
    // The largest that fits is stored (the estimate of KV's value encoding holds on the real backend).
    expect((await appendBatch(kv, body('huge', [ev(1), exact(2)]), kept)).head).toBe(2)

    // Through the edge: 413 TOO_LARGE, which the relay turns into an `oversize` marker for that seq.
    const settings = edgeSettings()
    const rooms = await kvRooms(kv, settings, { log: quiet })
    const app = await createEdge(settings, { rooms, log: quiet })
    const raw = JSON.stringify(body('huge', [over(3)]))
    const res = await app.request('/internal/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-relay-signature': await sign(settings.RELAY_SECRET, raw) },
      body: raw,
    })
    expect(res.status).toBe(413)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOO_LARGE')
    rooms.close()
  })

  it('deletes what a rebase skipped', async () => {
    const kv = await db.open()
    await appendBatch(
      kv,
      body(
        'rebased',
        range(1, 5).map((s) => ev(s)),
      ),
      kept,
    )
    expect((await appendBatch(kv, body('rebased', [ev(9)]), kept)).head).toBe(5) // a gap without rebase
    expect(
      (
        await appendBatch(
          kv,
          body(
            'rebased',
            range(9, 10).map((s) => ev(s)),
            true,
          ),
          kept,
        )
      ).head,
    ).toBe(10)
    const keys: unknown[] = []
    for await (const e of kv.list({ start: eventKey('rebased', 0), end: eventKey('rebased', 100) })) keys.push(e.key[3])
    expect(keys).toEqual([9, 10])
    expect((await readHead(kv, 'rebased')).head).toEqual({ seq: 10, base: 9 })
  })

  it('takes a resend racing from another instance once', async () => {
    const [a, b] = [await db.open(), await db.open()]
    const batch = body(
      'race',
      range(1, 50).map((s) => ev(s)),
    )
    const [ra, rb] = await Promise.all([appendBatch(a, batch, kept), appendBatch(b, batch, kept)])
    expect([ra.head, rb.head]).toEqual([50, 50])
    expect(ra.written.length + rb.written.length).toBe(50)
    expect((await readEvents(a, 'race', 0, 50)).map((e) => e.seq)).toEqual(range(1, 50))
  })
})

describe('what KV rooms cost in KV operations', () => {
  it('per published batch, per instance watching, and per connect', async () => {
    const settings = edgeSettings({ HISTORY_LIMIT: '300' })
    const a = countingKv(await db.open())
    const b = countingKv(await db.open())
    const roomsA = await kvRooms(a.kv, settings, { log: quiet })
    const roomsB = await kvRooms(b.kv, settings, { log: quiet })
    const t = 'costs'
    await roomsA.get(t).publish(
      body(
        t,
        range(1, 400).map((s) => ev(s)),
      ),
    ) // past HISTORY_LIMIT: KV holds 101..400
    a.reset()
    b.reset()
    const connect = (lastEventId?: number) => roomsB.get(t).connect({ topics: {}, retryMs: 1000, lastEventId })

    // The first subscriber of a tenant on an instance: one get (the head), one list (the newest 256), one watch.
    const streams = [await connect(390)]
    expect(b.counts).toMatchObject({ gets: 1, lists: 1, listed: 256, commits: 0, watches: 1 })
    expect(roomsB.mirrors.get(t)!.room.first).toBe(145)
    // Later subscribers of that tenant on that instance: nothing from KV, for a resume within the copy.
    b.reset()
    streams.push(await connect(395), await connect())
    expect(b.counts).toMatchObject({ gets: 0, lists: 0, commits: 0, watches: 0 })
    // A resume from before the copy: the missing events from KV, 256 per list call (here 101..144).
    streams.push(await connect(100))
    await until('the resume from KV', () => b.counts.listed === 44 && roomsB.subscribers(t) === 4)
    expect(b.counts).toMatchObject({ gets: 0, lists: 1, listed: 44 })

    // A batch of n events through A: one get, one commit of n sets, n count trims and the head.
    b.reset()
    await roomsA.get(t).publish(
      body(
        t,
        range(401, 410).map((s) => ev(s)),
      ),
    )
    expect(a.counts).toMatchObject({ gets: 1, lists: 0, commits: 1, mutations: 21 })
    // B, watching: one list of the new events per watch notification (notifications may coalesce batches).
    await until('B has the batch', () => roomsB.mirrors.get(t)!.room.head === 410)
    expect(b.counts).toMatchObject({ gets: 0, lists: 1, listed: 10, commits: 0 })

    // An instance with subscribers of its own takes the batches it writes without reading them back.
    streams.push(await roomsA.get(t).connect({ topics: {}, retryMs: 1000 }))
    a.reset()
    await roomsA.get(t).publish(
      body(
        t,
        range(411, 415).map((s) => ev(s)),
      ),
    )
    await until('B has the next batch', () => roomsB.mirrors.get(t)!.room.head === 415)
    await new Promise((resolve) => setTimeout(resolve, 100)) // A's own watch notification
    expect(a.counts).toMatchObject({ gets: 1, lists: 0, commits: 1, mutations: 11 })

    await Promise.all(streams.map((s) => s.cancel()))
    roomsA.close()
    roomsB.close()
  })
})
