import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { testHistory } from '../../test/support/rooms.ts'
import { PresenceCounter, presenceKeys, presenceSnapshot, sumTallies } from './presence.ts'
import { Room, type Sink } from './room.ts'

const sink = () => {
  const presence: unknown[] = []
  const s: Sink & { presence: unknown[] } = {
    presence,
    write(chunk) {
      const text = new TextDecoder().decode(chunk)
      if (text.startsWith('event: presence\n')) presence.push(JSON.parse(text.split('\ndata: ')[1]!))
      return true
    },
    close() {},
    backlog: 0,
    whenDrained: (fn) => fn(),
  }
  return s
}

describe('presenceKeys', () => {
  it('counts a subscription under its requested topics, else its grants, else *', () => {
    expect(presenceKeys({ requested: ['a', 'b'] })).toEqual(['a', 'b'])
    expect(presenceKeys({ requested: ['a', 'x'], grants: ['a'] })).toEqual(['a'])
    expect(presenceKeys({ grants: ['orders*'] })).toEqual(['orders*'])
    expect(presenceKeys({})).toEqual(['*'])
  })
})

describe('PresenceCounter.snapshot', () => {
  it('shows a limited token only the subscribers counted under its topics, each once', () => {
    const counter = new PresenceCounter(() => {}, 1000)
    counter.join(['a', 'b'])
    counter.join(['a'])
    counter.join(['b'])
    counter.join(['*'])
    counter.join(['orders*'])
    counter.join(['secret'])
    expect(counter.snapshot('t')).toEqual({ tenant: 't', subscribers: 6, topics: { '*': 1, a: 2, b: 2, 'orders*': 1, secret: 1 } })
    // Three subscribers, although a and b count four: the subscriber to a,b is not counted twice.
    expect(counter.snapshot('t', ['a', 'b'])).toEqual({ tenant: 't', subscribers: 3, topics: { a: 2, b: 2 } })
    expect(counter.snapshot('t', ['b'])).toEqual({ tenant: 't', subscribers: 2, topics: { b: 2 } })
    expect(counter.snapshot('t', ['orders*'])).toEqual({ tenant: 't', subscribers: 1, topics: { 'orders*': 1 } })
    expect(counter.snapshot('t', ['nothing'])).toEqual({ tenant: 't', subscribers: 0, topics: {} })
    // Keys in another order are the same subscription: leaving takes it out of the total too.
    counter.leave(['b', 'a'])
    expect(counter.snapshot('t', ['a', 'b'])).toEqual({ tenant: 't', subscribers: 2, topics: { a: 1, b: 1 } })
    counter.clear()
    expect(counter.snapshot('t', ['a'])).toEqual({ tenant: 't', subscribers: 0, topics: {} })
  })
})

describe('the parts of a sharded room add up', () => {
  it('a tally counts subscribers by their set of keys; snapshots of several tallies count each subscriber once', () => {
    const shard = new PresenceCounter(() => {}, 1000)
    shard.join(['b', 'a'])
    shard.join(['*'])
    const room = new PresenceCounter(() => {}, 1000)
    room.join(['a', 'b'])
    room.join(['__proto__']) // a valid topic name: a plain key, never the object's prototype
    expect(shard.tally()).toEqual({ 'a\nb': 1, '*': 1 })
    expect(sumTallies([shard.tally(), room.tally()])).toEqual({ 'a\nb': 2, '*': 1, ['__proto__']: 1 })
    room.setOthers(shard.tally())
    expect(room.snapshot('t')).toEqual({ tenant: 't', subscribers: 4, topics: { '*': 1, ['__proto__']: 1, a: 2, b: 2 } })
    expect(room.snapshot('t', ['a'])).toEqual({ tenant: 't', subscribers: 2, topics: { a: 2 } })
    expect(presenceSnapshot('t', [shard.tally(), room.tally()], ['b'])).toEqual(room.snapshot('t', ['b']))
  })
})

describe('Room presence', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('counts joins and leaves per topic', () => {
    const room = new Room('p', { history: testHistory(10) })
    const stopA = room.subscribe({ topics: { requested: ['a'] } }, sink())
    room.subscribe({ topics: { requested: ['a', 'b'] } }, sink())
    room.subscribe({ topics: {} }, sink())
    expect(room.presence()).toEqual({ tenant: 'p', subscribers: 3, topics: { '*': 1, a: 2, b: 1 } })
    stopA()
    expect(room.presence()).toEqual({ tenant: 'p', subscribers: 2, topics: { '*': 1, a: 1, b: 1 } })
    // A token limited to `b` learns nothing about other topics, nor about their subscribers.
    expect(room.presence(['b'])).toEqual({ tenant: 'p', subscribers: 1, topics: { b: 1 } })
  })

  it('sends presence on joining, then coalesces a thousand joins into one event per second', () => {
    const room = new Room('p', { history: testHistory(10) })
    const watcher = sink()
    room.subscribe({ topics: {}, presence: true }, watcher)
    expect(watcher.presence).toEqual([{ tenant: 'p', subscribers: 1, topics: { '*': 1 } }])
    vi.advanceTimersByTime(0) // its own join, already reported: no repeat needed, but at most one event
    const before = watcher.presence.length
    const stops = Array.from({ length: 1000 }, () => room.subscribe({ topics: { requested: ['x'] } }, sink()))
    vi.advanceTimersByTime(999)
    expect(watcher.presence.length).toBeLessThanOrEqual(before + 1)
    vi.advanceTimersByTime(1001)
    expect(watcher.presence.at(-1)).toEqual({ tenant: 'p', subscribers: 1001, topics: { '*': 1, x: 1000 } })
    const afterJoins = watcher.presence.length
    expect(afterJoins).toBeLessThanOrEqual(before + 2)
    for (const stop of stops.slice(0, 500)) stop()
    vi.advanceTimersByTime(5000)
    expect(watcher.presence.length).toBe(afterJoins + 1)
    expect(watcher.presence.at(-1)).toEqual({ tenant: 'p', subscribers: 501, topics: { '*': 1, x: 500 } })
  })

  it('skips the event when joins and leaves cancel out, and stops its timer on closeAll', () => {
    const room = new Room('p', { history: testHistory(10) })
    const watcher = sink()
    room.subscribe({ topics: {}, presence: true }, watcher)
    vi.advanceTimersByTime(2000)
    const n = watcher.presence.length
    room.subscribe({ topics: { requested: ['y'] } }, sink())()
    vi.advanceTimersByTime(2000)
    expect(watcher.presence.length).toBe(n)
    room.subscribe({ topics: { requested: ['y'] } }, sink())
    room.closeAll()
    expect(vi.getTimerCount()).toBe(0)
    expect(room.presence()).toEqual({ tenant: 'p', subscribers: 0, topics: {} })
  })
})
