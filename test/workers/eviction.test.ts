import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { durableRooms, type RoomNamespace } from '../../edge/room/durable/durable-rooms.ts'
import { RoomObject } from '../../edge/room/durable/room-object.ts'
import type { Env } from '../../edge/platform/workers.ts'
import type { WireEvent } from '../../shared/schema.ts'
import { workersSettings } from '../support/settings.ts'
import { collect } from './sse-reader.ts'

const ns = (env as unknown as Env).ROOMS
const rooms = durableRooms(ns as unknown as RoomNamespace, { HEARTBEAT_MS: 1000, SUBSCRIBER_QUEUE_BYTES: 4 << 20 })
const ev = (seq: number, ts = Date.now()): WireEvent => ({ seq, topic: 't', data: JSON.stringify({ seq }), ts })
const tenant = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

describe('Durable Object room history', () => {
  it('is bounded in bytes as well as in events (HISTORY_MAX_BYTES, 64 KiB here), across a reset too', async () => {
    const t = tenant('bytes')
    const room = rooms.get(t)
    const big = (seq: number): WireEvent => ({ seq, topic: 't', data: JSON.stringify('b'.repeat(30_000)), ts: Date.now() })
    await room.publish({ tenant: t, events: [ev(1), big(2), big(3), big(4)] })
    const stub = () => ns.get(ns.idFromName(t)) // a stub breaks with its object: take a new one after the reset
    expect(await runInDurableObject(stub(), (r) => r.bounds)).toEqual({ first: 3, head: 4 }) // 2 × 30 KB fit, 3 do not
    await runInDurableObject(stub(), (_, state) => state.abort('test eviction')).catch(() => {})
    await room.publish({ tenant: t, events: [big(5)] })
    expect(await runInDurableObject(stub(), (r) => r.bounds)).toEqual({ first: 4, head: 5 })
    const late = collect(await room.connect({ topics: {}, retryMs: 1000, lastEventId: 1 }))
    await late.until('reset', () => late.messages.length > 0)
    expect(late.messages[0]).toMatchObject({ event: 'reset', data: '{"head":5,"first":4}' })
  })
})

describe('Durable Object rooms survive eviction', () => {
  it('resumes from stored history after the object is reset, and keeps its head', async () => {
    const t = tenant('evict')
    const room = rooms.get(t)
    await room.publish({ tenant: t, events: [ev(1), ev(2), ev(3), ev(4)] })
    const before = collect(await room.connect({ topics: {}, retryMs: 1000, lastEventId: 4 }))

    // Reset this object only (other test files share the runtime): it loses its memory and its sockets close.
    await runInDurableObject(ns.get(ns.idFromName(t)), (_, state) => state.abort('test eviction')).catch(() => {})
    await before.until('the old stream to end', before.ended) // the browser would now reconnect with Last-Event-ID

    const after = collect(await room.connect({ topics: {}, retryMs: 1000, lastEventId: 2 }))
    await after.until('replay', () => after.seqs().length === 2)
    expect(after.seqs()).toEqual([3, 4])
    // The head survived too: the relay's next batch is accepted, not asked to start over.
    expect(await room.publish({ tenant: t, events: [ev(4), ev(5)] })).toEqual({ tenant: t, head: 5 })
    await after.until('live', () => after.seqs().length === 3)
    expect(after.seqs()).toEqual([3, 4, 5])
  })

  it('rebuilds its subscribers from socket attachments when it wakes from hibernation', async () => {
    const t = tenant('wake')
    const room = rooms.get(t)
    await room.publish({ tenant: t, events: [ev(1), ev(2)] })
    const orders = collect(await room.connect({ topics: { requested: ['orders'] }, retryMs: 1000 }))
    const all = collect(await room.connect({ topics: {}, retryMs: 1000, lastEventId: 0 }))
    // Too large for a socket attachment (16 KiB): this filter is kept in SQLite and found again on wake.
    const grants = Array.from({ length: 256 }, (_, i) => `${`orders.${i}`.padEnd(120, 'x')}*`)
    const big = collect(await room.connect({ topics: { grants: [...grants, 'orders'] }, retryMs: 1000 }))
    await all.until('replay', () => all.seqs().length === 2)
    // What the constructor does after hibernation: a new room over the same storage and the surviving sockets.
    await runInDurableObject(ns.get(ns.idFromName(t)), async (_, state) => {
      const woken = new RoomObject(
        state.storage.sql,
        workersSettings({ HISTORY_LIMIT: '5', HISTORY_MAX_AGE_S: '0' }),
        state.getWebSockets(),
      )
      expect(woken.size).toBe(3)
      const counts = await woken.presence(t)
      expect([counts.subscribers, counts.topics['*'], counts.topics.orders]).toEqual([3, 1, 2]) // presence is rebuilt too
      expect(woken.history.head).toBe(2)
      woken.publish({ tenant: t, events: [{ ...ev(3), topic: 'orders' }, ev(4)] })
    })
    await all.until('live after wake', () => all.seqs().length === 4)
    await orders.until('filtered live after wake', () => orders.seqs().length === 1)
    await big.until('stored filter after wake', () => big.seqs().length === 1)
    expect(all.seqs()).toEqual([1, 2, 3, 4])
    expect(orders.seqs()).toEqual([3])
    expect(big.seqs()).toEqual([3])
  })

  it('bounds history by age as well as count', async () => {
    const t = tenant('age')
    const room = rooms.get(t)
    const old = Date.now() - 2 * 86_400_000 // HISTORY_MAX_AGE_S defaults to one day
    await room.publish({ tenant: t, events: [ev(1, old), ev(2, old), ev(3)] })
    const bounds = await runInDurableObject(ns.get(ns.idFromName(t)), (r) => r.bounds)
    expect(bounds).toEqual({ first: 3, head: 3 })
    // Even the newest event past the age bound stays: it records the head.
    await room.publish({ tenant: t, events: [ev(4, old)] })
    expect(await runInDurableObject(ns.get(ns.idFromName(t)), (r) => r.bounds)).toEqual({ first: 4, head: 4 })
    const s = collect(await room.connect({ topics: {}, retryMs: 1000, lastEventId: 0 }))
    await s.until('reset', () => s.messages.length === 1)
    expect(s.messages[0]).toEqual({ event: 'reset', data: JSON.stringify({ head: 4, first: 4 }) })
  })

  it('writes about two SQLite rows per event (insert, and delete when it ages out), the figure docs/cloudflare.md prices', async () => {
    const t = tenant('rows')
    await rooms.get(t).publish({ tenant: t, events: [ev(1)] }) // create the object and its table
    const perEvent = await runInDurableObject(ns.get(ns.idFromName(t)), (_, state) => {
      let written = 0
      // The real SQLite API, counting what each statement writes (rowsWritten is final once the cursor is drained).
      const exec = (query: string, ...bindings: unknown[]) => {
        const cursor = state.storage.sql.exec(query, ...bindings)
        const rows = cursor.toArray()
        written += cursor.rowsWritten
        return { toArray: () => rows, [Symbol.iterator]: () => rows[Symbol.iterator]() }
      }
      const room = new RoomObject({ exec }, workersSettings({ HISTORY_LIMIT: '5' }))
      for (let seq = 2; seq <= 201; seq++) room.publish({ tenant: t, events: [ev(seq)] })
      return written / 200
    })
    console.log(`SQLite rows written per event (one event per batch, history full): ${perEvent.toFixed(2)}`)
    expect(perEvent).toBeLessThanOrEqual(2.05)
  })
})
