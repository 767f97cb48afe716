import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { durableRooms, type RoomNamespace } from '../../../edge/room/durable/durable-rooms.ts'
import { batch } from '../room-sockets.ts'
import { collect } from '../sse-reader.ts'
import { connectToShard, eventually, ns, object, placement, request, rooms, shardsOf } from './support.ts'

const tenant = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`
const publish = (t: string, from: number, to: number) => rooms.get(t).publish({ tenant: t, events: batch(from, to) })
/** Connects one subscriber after another (in order, so that where each lands is known). */
const connectAll = async (t: string, requests: ReturnType<typeof request>[]) => {
  const streams: ReturnType<typeof collect>[] = []
  for (const r of requests) streams.push(collect(await rooms.get(t).connect(r)))
  return streams
}
const evict = (stub: DurableObjectStub) => runInDurableObject(stub, (_, state) => state.abort('test eviction')).catch(() => {})

describe('a hot room shards (ROOM_SHARD_SUBSCRIBERS=3)', () => {
  it('holds 3 subscribers, then shards of 3 fed with every batch; an empty shard is let go, and a new one gets the history', async () => {
    const t = tenant('place')
    const subs = await connectAll(
      t,
      Array.from({ length: 7 }, () => request({ lastEventId: 0 })),
    )
    expect(await placement(t)).toEqual([3, 3, 1])
    await publish(t, 1, 2)
    for (const s of subs) await s.until('1 and 2', () => s.seqs().length === 2)
    expect(subs.map((s) => s.seqs().join())).toEqual(Array(7).fill('1,2'))
    await subs[6]!.cancel()
    await eventually(async () => expect(await shardsOf(t)).toEqual([1]))
    await Promise.all(subs.slice(3, 6).map((s) => s.cancel()))
    await eventually(async () => expect(await shardsOf(t)).toEqual([]))
    expect((await rooms.get(t).presence()).subscribers).toBe(3)
    const again = (await connectAll(t, [request({ lastEventId: 1 })]))[0]!
    await again.until('the history', () => again.seqs().length === 1)
    expect(again.seqs()).toEqual([2])
    expect(await placement(t)).toEqual([3, 1])
  })

  it('counts presence over the room and its shards; presence events, on the room or on a shard, count the whole room', async () => {
    const t = tenant('presence')
    const [onRoom, , , onShard, more] = await connectAll(t, [
      request({ presence: true }),
      request({ topics: { requested: ['a'] } }),
      request({ topics: { requested: ['a'] } }),
      request({ presence: true }),
      request({ topics: { requested: ['a'] } }),
    ])
    expect(await placement(t)).toEqual([3, 2])
    const room = rooms.get(t)
    expect(await room.presence()).toEqual({ tenant: t, subscribers: 5, topics: { '*': 2, a: 3 } })
    expect(await room.presence(['a'])).toEqual({ tenant: t, subscribers: 3, topics: { a: 3 } })
    const counted = (n: number, a: number) => JSON.stringify({ tenant: t, subscribers: n, topics: { '*': 2, a } })
    for (const s of [onRoom!, onShard!]) await s.until('the whole room', () => s.messages.at(-1)?.data === counted(5, 3))
    await more!.cancel()
    for (const s of [onRoom!, onShard!]) await s.until('one fewer', () => s.messages.at(-1)?.data === counted(4, 2))
  })

  it('a shard evicted mid-stream loses no event: its subscribers resume from its stored history, the owner feeds it again', async () => {
    const t = tenant('shard-evict')
    await connectAll(t, [request(), request(), request()])
    const [before] = await connectAll(t, [request({ lastEventId: 0 })])
    expect(await placement(t)).toEqual([3, 1])
    await publish(t, 1, 3)
    await before!.until('1..3', () => before!.seqs().length === 3)
    await evict(object(t, 1))
    await before!.until('its stream to end', before!.ended) // the browser reconnects with Last-Event-ID
    await publish(t, 4, 5) // the shard is away or starting again: fed once it answers
    const [after] = await connectAll(t, [request({ lastEventId: before!.seqs().at(-1) })])
    await publish(t, 6, 6)
    await after!.until('up to 6', () => after!.seqs().at(-1) === 6)
    expect([...before!.seqs(), ...after!.seqs()]).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('an owner that restarts goes on feeding its shards: their subscribers miss nothing and get nothing twice', async () => {
    const t = tenant('owner-evict')
    const fillers = await connectAll(t, [request(), request(), request()])
    const [onShard] = await connectAll(t, [request({ lastEventId: 0 })])
    await publish(t, 1, 2)
    await onShard!.until('1, 2', () => onShard!.seqs().length === 2)
    await evict(object(t))
    for (const f of fillers) await f.until('the room to close its stream', f.ended)
    await publish(t, 3, 4)
    await publish(t, 5, 5)
    await onShard!.until('up to 5', () => onShard!.seqs().at(-1) === 5)
    expect(onShard!.seqs()).toEqual([1, 2, 3, 4, 5])
    expect(onShard!.ended()).toBe(false)
    expect(await shardsOf(t)).toEqual([1])
    expect((await rooms.get(t).presence()).subscribers).toBe(1)
  })

  it('a shard the owner let go that gets a subscriber after all (a late connect) is taken back and fed', async () => {
    const t = tenant('late')
    await connectAll(t, [request(), request(), request()])
    const [gone] = await connectAll(t, [request()])
    await gone!.cancel()
    await eventually(async () => expect(await shardsOf(t)).toEqual([]))
    await publish(t, 1, 2)
    const late = collect(await connectToShard(t, 1, 0))
    await eventually(async () => expect(await shardsOf(t)).toEqual([1]))
    await publish(t, 3, 3)
    await late.until('1..3', () => late.seqs().at(-1) === 3)
    expect(late.seqs()).toEqual([1, 2, 3])
  })

  it('a subscriber on a shard is dropped when too slow, and ends with reauth when its token expires, as on the room', async () => {
    const t = tenant('shard-stream')
    const small = durableRooms(ns as unknown as RoomNamespace, { HEARTBEAT_MS: 60_000, SUBSCRIBER_QUEUE_BYTES: 4096 }).get(t)
    await connectAll(t, [request(), request(), request()])
    const slow = await small.connect(request()) // never read
    const expiring = collect(await small.connect(request({ expiresAt: Date.now() + 500 })))
    expect(await placement(t)).toEqual([3, 2])
    const big = JSON.stringify({ big: 'x'.repeat(1000) })
    for (let seq = 1; seq <= 20; seq++) await small.publish({ tenant: t, events: [{ seq, topic: 't', data: big, ts: Date.now() }] })
    await expiring.until('reauth', expiring.ended)
    expect(expiring.messages.at(-1)).toEqual({ event: 'reauth', data: '{"reason":"token expired"}' })
    expect(expiring.seqs()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    await eventually(async () => expect(await runInDurableObject(object(t, 1), (r) => r.subscribers)).toBe(0))
    const cut = collect(slow)
    await cut.until('the end of the dropped stream', cut.ended)
    expect(cut.seqs().length).toBeLessThan(20)
  })
})
