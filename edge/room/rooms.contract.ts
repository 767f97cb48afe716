/**
 * The one test suite every `Rooms` implementation passes: in-memory rooms in Node (memory-rooms.test.ts) and
 * Durable Object rooms in real workerd (test/workers/durable-rooms.test.ts). It talks to rooms only through the
 * `Rooms` interface and reads the SSE bytes they produce.
 */
import { describe, expect, it } from 'vitest'
import type { WireEvent } from '../../shared/schema.ts'
import { createSseParser, type SseMessage } from '../../shared/sse-parse.ts'
import type { ConnectRequest, Rooms } from './stub.ts'

/** The history limit an implementation under test must be configured with. */
export const CONTRACT_HISTORY_LIMIT = 5

export interface ContractSubject {
  rooms: Rooms
  /** Live subscribers of a tenant's room, as the implementation counts them. */
  subscribers(tenant: string): Promise<number>
}

const ev = (seq: number, topic = 't'): WireEvent => ({ seq, topic, data: JSON.stringify({ seq }), ts: Date.now() })
const batch = (from: number, to: number, topic = 't') => Array.from({ length: to - from + 1 }, (_, i) => ev(from + i, topic))
let n = 0
const freshTenant = () => `contract-${Date.now().toString(36)}-${(n++).toString(36)}`

/** Reads an SSE stream in the background and records what arrives. */
const reader = (stream: ReadableStream<Uint8Array>) => {
  const messages: SseMessage[] = []
  let raw = ''
  let done = false
  const feed = createSseParser((m) => messages.push(m))
  const r = stream.getReader()
  const decoder = new TextDecoder()
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done: end } = await r.read()
        if (end) break
        const text = decoder.decode(value, { stream: true })
        raw += text
        feed(text)
      }
    } catch {
      // cancelled
    }
    done = true
  })()
  const until = async (what: string, pred: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages)}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  return {
    messages,
    raw: () => raw,
    seqs: () => messages.filter((m) => m.id !== undefined).map((m) => Number(m.id)),
    until,
    ended: () => done,
    cancel: async () => {
      await r.cancel().catch(() => {})
      await pump
    },
  }
}

const request = (over: Partial<ConnectRequest> = {}): ConnectRequest => ({ topics: {}, retryMs: 1000, ...over })

export const roomsContract = (name: string, subject: () => ContractSubject) =>
  describe(`Rooms contract: ${name}`, () => {
    it('starts every stream with retry:, replays history after Last-Event-ID, then goes live', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      await room.publish({ tenant: t, events: batch(1, 3) })
      const all = reader(await room.connect(request({ lastEventId: 0, retryMs: 2500 })))
      const tail = reader(await room.connect(request({ lastEventId: 2 })))
      const live = reader(await room.connect(request()))
      await all.until('replay', () => all.seqs().length === 3)
      await room.publish({ tenant: t, events: [ev(4)] })
      await all.until('live event', () => all.seqs().length === 4)
      await tail.until('live event', () => tail.seqs().length === 2)
      await live.until('live event', () => live.seqs().length === 1)
      expect(all.raw().startsWith('retry: 2500\n\n')).toBe(true)
      expect(all.seqs()).toEqual([1, 2, 3, 4])
      expect(tail.seqs()).toEqual([3, 4])
      expect(live.seqs()).toEqual([4])
      expect(all.messages[0]).toEqual({ id: '1', event: 't', data: '{"seq":1}' })
      await Promise.all([all.cancel(), tail.cancel(), live.cancel()])
    })

    it('sends reset when Last-Event-ID is older than the history, then live events', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const last = CONTRACT_HISTORY_LIMIT + 3
      await room.publish({ tenant: t, events: batch(1, last) })
      const old = reader(await room.connect(request({ lastEventId: 1 })))
      const edge = reader(await room.connect(request({ lastEventId: 3 }))) // 4 is the oldest held
      await old.until('reset', () => old.messages.length === 1)
      expect(old.messages[0]).toEqual({ event: 'reset', data: JSON.stringify({ head: last, first: 4 }) })
      await room.publish({ tenant: t, events: [ev(last + 1)] })
      await old.until('live event', () => old.seqs().length === 1)
      await edge.until('replay + live', () => edge.seqs().length === CONTRACT_HISTORY_LIMIT + 1)
      expect(old.seqs()).toEqual([last + 1])
      expect(edge.seqs()).toEqual([4, 5, 6, 7, 8, 9])
      await Promise.all([old.cancel(), edge.cancel()])
    })

    it('publish is idempotent, refuses gaps and accepts a rebase, answering its head', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      expect(await room.publish({ tenant: t, events: batch(3, 4) })).toEqual({ tenant: t, head: 0 }) // empty room: send all
      const sub = reader(await room.connect(request({ lastEventId: 0 })))
      expect(await room.publish({ tenant: t, events: batch(1, 3) })).toEqual({ tenant: t, head: 3 })
      expect(await room.publish({ tenant: t, events: batch(2, 5) })).toEqual({ tenant: t, head: 5 })
      expect(await room.publish({ tenant: t, events: batch(1, 5) })).toEqual({ tenant: t, head: 5 })
      expect(await room.publish({ tenant: t, events: batch(8, 9) })).toEqual({ tenant: t, head: 5 })
      expect(await room.publish({ tenant: t, events: batch(8, 9), rebase: true })).toEqual({ tenant: t, head: 9 })
      await sub.until('rebased events', () => sub.seqs().length === 7)
      expect(sub.seqs()).toEqual([1, 2, 3, 4, 5, 8, 9])
      expect(sub.messages[5]).toEqual({ event: 'reset', data: JSON.stringify({ head: 7, first: 8 }) })
      const late = reader(await room.connect(request({ lastEventId: 5 }))) // 6 and 7 never reach the room
      await late.until('reset', () => late.messages.length === 1)
      expect(late.messages[0]?.event).toBe('reset')
      await Promise.all([sub.cancel(), late.cancel()])
    })

    it('delivers in seq order, once, across batches and topics', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const sub = reader(await room.connect(request({ lastEventId: 0 })))
      for (let i = 1; i <= 40; i += 4)
        await room.publish({ tenant: t, events: [ev(i, 'a'), ev(i + 1, 'b'), ev(i + 2, 'a'), ev(i + 3, 'c')] })
      await room.publish({ tenant: t, events: batch(30, 40) }) // a resend after a lost reply
      await sub.until('40 events', () => sub.seqs().length >= 40)
      expect(sub.seqs()).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      await sub.cancel()
    })

    it('live subscribers get every event of a batch larger than the history, with no reset', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      // More subscribers than a sharded room holds itself: some are on a shard, fed from the owner.
      const subs = await Promise.all(Array.from({ length: 5 }, async () => reader(await room.connect(request()))))
      const last = CONTRACT_HISTORY_LIMIT + 3
      await room.publish({ tenant: t, events: batch(1, last) })
      await room.publish({ tenant: t, events: [ev(last + 1)] })
      for (const s of subs) await s.until(`seq ${last + 1}`, () => s.seqs().at(-1) === last + 1)
      for (const s of subs)
        expect(s.messages.map((m) => m.id ?? m.event)).toEqual(Array.from({ length: last + 1 }, (_, i) => String(i + 1)))
      await Promise.all(subs.map((s) => s.cancel()))
    })

    it('subscribers joining while batches are still being published get each event once, in order', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const joins: Promise<{ from: number | undefined; s: ReturnType<typeof reader> }>[] = []
      const join = (from: number | undefined) =>
        joins.push(room.connect(request({ lastEventId: from })).then((stream) => ({ from, s: reader(stream) })))
      let head = 0
      for (let i = 0; i < 20; i++) {
        // Not awaited before the joins: a room may be storing, answering or fanning this batch out as they arrive.
        const published = room.publish({ tenant: t, events: batch(head + 1, head + 2) })
        join(Math.max(0, head - 2))
        join(undefined)
        await published
        head += 2
      }
      const subs = await Promise.all(joins)
      await room.publish({ tenant: t, events: batch(head + 1, head + 2) }) // every subscriber is in by now: each ends with this
      const end = head + 2
      for (const { from, s } of subs) {
        await s.until(`seq ${end}`, () => s.seqs().at(-1) === end)
        // After a reset (its resume fell out of the 5-event history meanwhile) the stream goes on from the reset's head.
        const reset = s.messages[0]?.event === 'reset' ? (JSON.parse(s.messages[0].data) as { head: number }).head : undefined
        const after = reset ?? from ?? s.seqs()[0]! - 1
        expect(s.seqs(), `resumed after ${from}`).toEqual(Array.from({ length: end - after }, (_, i) => after + 1 + i))
      }
      await Promise.all(subs.map(({ s }) => s.cancel()))
    })

    it('filters by requested topics and by the topics the token grants', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const orders = reader(await room.connect(request({ topics: { requested: ['orders'] } })))
      const users = reader(await room.connect(request({ topics: { grants: ['user.*'] } })))
      const both = reader(await room.connect(request({ topics: { requested: ['orders', 'user.created'], grants: ['user.*'] } })))
      await room.publish({ tenant: t, events: [ev(1, 'orders'), ev(2, 'user.created'), ev(3, 'users'), ev(4, 'orders')] })
      const replay = reader(await room.connect(request({ lastEventId: 0, topics: { requested: ['users'] } })))
      await orders.until('orders', () => orders.seqs().length === 2)
      await users.until('users', () => users.seqs().length === 1)
      await both.until('granted', () => both.seqs().length === 1)
      await replay.until('replay', () => replay.seqs().length === 1)
      expect(orders.seqs()).toEqual([1, 4])
      expect(users.seqs()).toEqual([2])
      expect(both.seqs()).toEqual([2]) // 'orders' was asked for but not granted
      expect(replay.seqs()).toEqual([3])
      await Promise.all([orders.cancel(), users.cancel(), both.cancel(), replay.cancel()])
    })

    it('accepts the largest filter the edge lets through (64 topics, 256 grants of 128 characters)', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const long = (prefix: string, i: number) => `${prefix}${i}`.padEnd(128, 'x')
      const requested = Array.from({ length: 64 }, (_, i) => long('topic', i))
      const grants = Array.from({ length: 256 }, (_, i) => long('topic', i))
      const s = reader(await room.connect(request({ topics: { requested, grants } })))
      await room.publish({ tenant: t, events: [ev(1, requested[63]!), ev(2, 'other')] })
      await s.until('event', () => s.seqs().length === 1)
      expect(s.seqs()).toEqual([1])
      await s.cancel()
    })

    it('fans out to many subscribers', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const subs = await Promise.all(Array.from({ length: 40 }, async () => reader(await room.connect(request()))))
      await room.publish({ tenant: t, events: batch(1, 3) })
      for (const s of subs) await s.until('3 events', () => s.seqs().length === 3)
      expect(subs.every((s) => s.seqs().join() === '1,2,3')).toBe(true)
      await Promise.all(subs.map((s) => s.cancel()))
    })

    it('forgets a subscriber that disconnects, and only that one', async () => {
      const { rooms, subscribers } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const subs = await Promise.all(Array.from({ length: 3 }, async () => reader(await room.connect(request()))))
      expect(await subscribers(t)).toBe(3)
      await subs[0]!.cancel()
      await subs[1]!.cancel()
      const deadline = Date.now() + 10_000
      while ((await subscribers(t)) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(await subscribers(t)).toBe(1)
      await room.publish({ tenant: t, events: [ev(1)] })
      await subs[2]!.until('event', () => subs[2]!.seqs().length === 1)
      await subs[2]!.cancel()
    })

    it('counts presence by requested topic, or by grant, and shows a token only its granted topics', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      expect(await room.presence()).toEqual({ tenant: t, subscribers: 0, topics: {} })
      const a = reader(await room.connect(request({ topics: { requested: ['orders'] } })))
      const b = reader(await room.connect(request({ topics: { requested: ['orders', 'users'] } })))
      const c = reader(await room.connect(request({ topics: { grants: ['user.*'] } })))
      const d = reader(await room.connect(request()))
      expect(await room.presence()).toEqual({ tenant: t, subscribers: 4, topics: { '*': 1, orders: 2, 'user.*': 1, users: 1 } })
      // A token limited to `orders` counts only the subscribers it is shown a topic of.
      expect(await room.presence(['orders'])).toEqual({ tenant: t, subscribers: 2, topics: { orders: 2 } })
      await Promise.all([a.cancel(), d.cancel()])
      const deadline = Date.now() + 10_000
      while ((await room.presence()).subscribers !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(await room.presence()).toEqual({ tenant: t, subscribers: 2, topics: { orders: 1, 'user.*': 1, users: 1 } })
      await Promise.all([b.cancel(), c.cancel()])
    })

    it('sends event: presence on joining and when counts change, naming only granted topics', async () => {
      const { rooms } = subject()
      const t = freshTenant()
      const room = rooms.get(t)
      const watcher = reader(await room.connect(request({ presence: true, topics: { grants: ['orders'] } })))
      await watcher.until('presence on joining', () => watcher.messages.length >= 1)
      expect(watcher.messages[0]).toEqual({ event: 'presence', data: JSON.stringify({ tenant: t, subscribers: 1, topics: { orders: 1 } }) })
      const other = reader(await room.connect(request({ topics: { requested: ['orders'] } })))
      const hidden = reader(await room.connect(request({ topics: { requested: ['secret'] } })))
      const deadline = Date.now() + 10_000
      while ((await room.presence()).subscribers !== 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      await watcher.until('presence after joins', () => watcher.messages.some((m) => m.data.includes('"orders":2')))
      // The subscriber to `secret` is neither named nor counted for a token limited to `orders`.
      expect(watcher.messages.at(-1)).toEqual({
        event: 'presence',
        data: JSON.stringify({ tenant: t, subscribers: 2, topics: { orders: 2 } }),
      })
      await Promise.all([other.cancel(), hidden.cancel(), watcher.cancel()])
    }, 20_000)

    it('ends the stream with event: reauth when the token expires', async () => {
      const { rooms, subscribers } = subject()
      const t = freshTenant()
      const s = reader(await rooms.get(t).connect(request({ expiresAt: Date.now() + 300 })))
      await s.until('stream end', () => s.ended())
      expect(s.messages).toEqual([{ event: 'reauth', data: '{"reason":"token expired"}' }])
      const deadline = Date.now() + 10_000
      while ((await subscribers(t)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(await subscribers(t)).toBe(0)
    })
  })
