import { describe, expect, it } from 'vitest'
import { testHistory } from '../../test/support/rooms.ts'
import { ArrayHistory } from './history.ts'
import type { WireEvent } from '../../shared/schema.ts'
import { encodeFrame } from '../../shared/sse.ts'
import { planResume, REPLAY_ROUND_BYTES, REPLAY_ROUND_EVENTS, Room, type Sink } from './room.ts'

const ev = (seq: number, topic = 't'): WireEvent => ({ seq, topic, data: JSON.stringify({ seq }), ts: 0 })
const batch = (from: number, to: number, topic = 't') => Array.from({ length: to - from + 1 }, (_, i) => ev(from + i, topic))

/**
 * A sink whose connection takes nothing until `drain()` is called: it shows how much a replay writes before it
 * waits. `capacity` bounds the frames it accepts before refusing (a subscriber too slow for live events). `frames`
 * holds one SSE frame per entry, however the room grouped them into writes.
 */
const collect = (capacity = Infinity, { paced = false } = {}) => {
  const frames: string[] = []
  let closed = false
  let backlog = 0
  let waiting: (() => void) | undefined
  const sink: Sink = {
    write(chunk) {
      // A write may carry several frames (a batch written whole): each counts against the capacity.
      const written = new TextDecoder().decode(chunk).split(/(?<=\n\n)/)
      if (frames.length + written.length > capacity) return false
      frames.push(...written)
      if (paced) backlog += chunk.byteLength
      return true
    },
    close() {
      closed = true
    },
    get backlog() {
      return backlog
    },
    whenDrained(fn) {
      if (paced) waiting = fn
      else fn()
    },
  }
  const drain = () => {
    backlog = 0
    const next = waiting
    waiting = undefined
    next?.()
  }
  return {
    sink,
    frames,
    drain,
    waiting: () => waiting !== undefined,
    seqs: () => frames.flatMap((f) => /^id: (\d+)/.exec(f)?.[1] ?? []).map(Number),
    closed: () => closed,
  }
}

describe('planResume', () => {
  it('decides live, replay or reset from the history bounds', () => {
    expect(planResume(undefined, 1, 10)).toEqual({ kind: 'live' })
    expect(planResume(4, 1, 10)).toEqual({ kind: 'replay', after: 4 })
    expect(planResume(0, 1, 10)).toEqual({ kind: 'replay', after: 0 })
    expect(planResume(4, 6, 10)).toEqual({ kind: 'reset' }) // 5 is gone
    expect(planResume(5, 6, 10)).toEqual({ kind: 'replay', after: 5 })
    expect(planResume(10, 6, 10)).toEqual({ kind: 'replay', after: 10 })
    expect(planResume(99, 6, 10)).toEqual({ kind: 'replay', after: 99 }) // ahead: wait, skip what it has seen
    expect(planResume(3, undefined, 10)).toEqual({ kind: 'reset' })
  })
})

describe('Room', () => {
  it('ignores seqs it already has and answers its head', () => {
    const room = new Room('r', { history: testHistory(100) })
    const sub = collect()
    room.subscribe({ topics: {} }, sub.sink)
    expect(room.publish({ tenant: 'r', events: batch(1, 3) }).head).toBe(3)
    expect(room.publish({ tenant: 'r', events: batch(2, 5) }).head).toBe(5)
    expect(sub.seqs()).toEqual([1, 2, 3, 4, 5])
  })

  it('refuses a batch that would leave a gap, unless it is a rebase', () => {
    const room = new Room('r', { history: testHistory(100) })
    room.publish({ tenant: 'r', events: batch(1, 3) })
    expect(room.publish({ tenant: 'r', events: batch(7, 8) }).head).toBe(3)
    expect(room.since(0).map((e) => e.seq)).toEqual([1, 2, 3])
    const fresh = new Room('f', { history: testHistory(100) })
    expect(fresh.publish({ tenant: 'f', events: batch(7, 8) }).head).toBe(0) // an empty room asks for everything
    expect(fresh.publish({ tenant: 'f', events: batch(7, 8), rebase: true }).head).toBe(8)
    expect(room.publish({ tenant: 'r', events: batch(7, 8), rebase: true }).head).toBe(8)
    expect(room.since(0).map((e) => e.seq)).toEqual([7, 8]) // never a gap inside the history
  })

  it('tells subscribers positioned before a rebase gap to reset, instead of skipping silently', () => {
    const room = new Room('r', { history: testHistory(100) })
    room.publish({ tenant: 'r', events: batch(1, 3) })
    const sub = collect()
    room.subscribe({ topics: {} }, sub.sink)
    room.publish({ tenant: 'r', events: batch(10, 11), rebase: true })
    expect(sub.frames).toEqual([
      'event: reset\ndata: {"head":9,"first":10}\n\n',
      'id: 10\nevent: t\ndata: {"seq":10}\n\n',
      'id: 11\nevent: t\ndata: {"seq":11}\n\n',
    ])
  })

  it('a resume waiting on a restarted room gets reset when the refill starts past it (retention pruned the rest)', () => {
    const room = new Room('r', { history: testHistory(100) })
    const waiting = collect()
    room.subscribe({ topics: {}, lastEventId: 10 }, waiting.sink) // resumes on an empty room (it restarted)
    room.publish({ tenant: 'r', events: batch(46, 48), rebase: true }) // 11..45 were pruned
    expect(waiting.frames[0]).toBe('event: reset\ndata: {"head":45,"first":46}\n\n')
    expect(waiting.seqs()).toEqual([46, 47, 48])
    const ahead = collect()
    room.subscribe({ topics: {}, lastEventId: 47 }, ahead.sink)
    room.publish({ tenant: 'r', events: batch(60, 61), rebase: true })
    expect(ahead.frames.filter((f) => f.startsWith('event: reset'))).toHaveLength(1)
    expect(ahead.seqs()).toEqual([48, 60, 61])
  })

  it('accept stores without sending; fanOut sends later, in turns, each event once to each subscriber, whenever it joined', () => {
    const room = new Room('r', { history: testHistory(100) })
    const before = Array.from({ length: 5 }, () => collect())
    for (const s of before) room.subscribe({ topics: {} }, s.sink)
    expect(room.accept({ tenant: 'r', events: batch(1, 2) })).toEqual({ tenant: 'r', head: 2 })
    expect(room.backlog).toEqual({ events: 2, bytes: room.since(0).reduce((n, e) => n + e.frame.byteLength, 0) })
    expect(before[0]!.seqs()).toEqual([])
    expect(room.fanOut(2)).toBe(false) // two subscribers visited
    expect(before.map((s) => s.seqs().length)).toEqual([2, 2, 0, 0, 0])
    // Between turns: another batch and a rebase are stored, and two subscribers join (one replays, one starts at the head).
    room.accept({ tenant: 'r', events: batch(3, 3) })
    room.accept({ tenant: 'r', events: batch(6, 6), rebase: true })
    const replaying = collect()
    room.subscribe({ topics: {}, lastEventId: 0 }, replaying.sink) // reset: the history starts at 6 now
    const live = collect()
    room.subscribe({ topics: {} }, live.sink)
    while (!room.fanOut(2));
    expect(room.backlog).toEqual({ events: 0, bytes: 0 })
    for (const s of before) {
      expect(s.seqs()).toEqual([1, 2, 3, 6])
      expect(s.frames[3]).toBe('event: reset\ndata: {"head":5,"first":6}\n\n')
    }
    expect(replaying.frames).toEqual(['event: reset\ndata: {"head":6,"first":6}\n\n'])
    expect(live.frames).toEqual([])
  })

  it('replays history then goes live without a gap or duplicate at the seam', () => {
    const room = new Room('r', { history: testHistory(100) })
    room.publish({ tenant: 'r', events: batch(1, 5) })
    const sub = collect()
    room.subscribe({ topics: {}, lastEventId: 2 }, sub.sink)
    room.publish({ tenant: 'r', events: batch(4, 7) })
    expect(sub.seqs()).toEqual([3, 4, 5, 6, 7])
  })

  it('keeps at most historyLimit events for resume and resets older resumes', () => {
    const room = new Room('r', { history: testHistory(10) })
    for (let i = 1; i <= 100; i++) room.publish({ tenant: 'r', events: [ev(i)] })
    expect(room.first).toBe(91)
    const late = collect()
    room.subscribe({ topics: {}, lastEventId: 50 }, late.sink)
    expect(late.frames[0]).toBe('event: reset\ndata: {"head":100,"first":91}\n\n')
    const ok = collect()
    room.subscribe({ topics: {}, lastEventId: 90 }, ok.sink)
    expect(ok.seqs()).toEqual(batch(91, 100).map((e) => e.seq))
  })

  it('filters by requested topics and grants', () => {
    const room = new Room('r', { history: testHistory(100) })
    const orders = collect()
    const granted = collect()
    room.subscribe({ topics: { requested: ['orders'] } }, orders.sink)
    room.subscribe({ topics: { grants: ['user.*'] } }, granted.sink)
    room.publish({ tenant: 'r', events: [ev(1, 'orders'), ev(2, 'user.created'), ev(3, 'users')] })
    expect(orders.seqs()).toEqual([1])
    expect(granted.seqs()).toEqual([2])
  })

  it('writes a batch whole to a subscriber that takes all of it, and event by event to one that filters', () => {
    const room = new Room('r', { history: testHistory(100) })
    const writes = { all: 0, some: 0 }
    const counting = (key: keyof typeof writes, c: ReturnType<typeof collect>): Sink => ({
      ...c.sink,
      write: (chunk, forced) => (writes[key]++, c.sink.write(chunk, forced)),
    })
    const all = collect()
    const some = collect()
    room.subscribe({ topics: {} }, counting('all', all))
    room.subscribe({ topics: { requested: ['a'] } }, counting('some', some))
    room.publish({ tenant: 'r', events: [...batch(1, 3, 'a'), ...batch(4, 5, 'b')] })
    expect(all.seqs()).toEqual([1, 2, 3, 4, 5])
    expect(some.seqs()).toEqual([1, 2, 3])
    expect(writes).toEqual({ all: 1, some: 3 })
    expect(room.delivered).toBe(8)
  })

  it('drops a subscriber whose queue is full, and only that one', () => {
    const room = new Room('r', { history: testHistory(100) })
    const slow = collect(2)
    const fast = collect()
    room.subscribe({ topics: {} }, slow.sink)
    room.subscribe({ topics: {} }, fast.sink)
    room.publish({ tenant: 'r', events: batch(1, 5) })
    expect(slow.closed()).toBe(true)
    expect(room.size).toBe(1)
    expect(room.slowDropped).toBe(1)
    expect(fast.seqs()).toEqual([1, 2, 3, 4, 5])
  })

  it('replays in rounds as the connection takes them: one round held per subscriber, live events after the seam', () => {
    const room = new Room('r', { history: testHistory(10_000) })
    room.publish({ tenant: 'r', events: batch(1, 1000) })
    const sub = collect(Infinity, { paced: true })
    room.subscribe({ topics: {}, lastEventId: 0 }, sub.sink)
    expect(sub.seqs()).toEqual(batch(1, REPLAY_ROUND_EVENTS).map((e) => e.seq)) // one round, then it waits
    expect(sub.waiting()).toBe(true)
    room.publish({ tenant: 'r', events: batch(1001, 1002) }) // live events wait their turn behind the replay
    expect(sub.seqs()).toHaveLength(REPLAY_ROUND_EVENTS)
    let rounds = 1
    while (sub.waiting()) sub.drain(), rounds++
    expect(rounds).toBe(Math.ceil(1002 / REPLAY_ROUND_EVENTS))
    expect(sub.seqs()).toEqual(batch(1, 1002).map((e) => e.seq))
    room.publish({ tenant: 'r', events: batch(1003, 1003) }) // live now
    expect(sub.seqs().at(-1)).toBe(1003)
    expect(room.slowDropped).toBe(0)
  })

  it('a replay round is bounded in bytes too, and a subscriber that leaves mid-replay is never written again', () => {
    const room = new Room('r', { history: testHistory(100) })
    const big = (seq: number): WireEvent => ({ seq, topic: 't', data: JSON.stringify({ pad: 'x'.repeat(20_000) }), ts: 0 })
    room.publish({ tenant: 'r', events: Array.from({ length: 20 }, (_, i) => big(i + 1)) })
    const sub = collect(Infinity, { paced: true })
    const leave = room.subscribe({ topics: {}, lastEventId: 0 }, sub.sink)
    expect(sub.seqs()).toEqual([1, 2, 3, 4]) // 4 × ~20 KB passes REPLAY_ROUND_BYTES
    expect(sub.sink.backlog).toBeGreaterThanOrEqual(REPLAY_ROUND_BYTES)
    leave()
    sub.drain()
    expect(sub.seqs()).toEqual([1, 2, 3, 4])
    expect(room.size).toBe(0)
  })

  it('a slow replay that the history outruns gets reset, then live events', () => {
    const room = new Room('r', { history: testHistory(300) })
    room.publish({ tenant: 'r', events: batch(1, 300) })
    const sub = collect(Infinity, { paced: true })
    room.subscribe({ topics: {}, lastEventId: 0 }, sub.sink)
    room.publish({ tenant: 'r', events: batch(301, 700) }) // 1..400 leave the history while it waits
    sub.drain()
    expect(sub.frames.at(-1)).toBe('event: reset\ndata: {"head":700,"first":401}\n\n')
    room.publish({ tenant: 'r', events: batch(701, 701) })
    expect(sub.seqs().at(-1)).toBe(701)
  })

  it('bounds the history in bytes as well as in events, keeping the newest event whatever its size', () => {
    const frame = encodeFrame(100, 't', JSON.stringify({ seq: 100 })).byteLength
    const room = new Room('r', { history: new ArrayHistory({ limit: 1000, bytes: frame * 10 }) })
    room.publish({ tenant: 'r', events: batch(1, 100) })
    expect(room.first).toBe(91)
    expect(room.since(0)).toHaveLength(10)
    room.publish({ tenant: 'r', events: [{ seq: 101, topic: 't', data: JSON.stringify('x'.repeat(frame * 20)), ts: 0 }] })
    expect(room.since(0).map((e) => e.seq)).toEqual([101])
    const late = collect()
    room.subscribe({ topics: {}, lastEventId: 95 }, late.sink)
    expect(late.frames[0]).toBe('event: reset\ndata: {"head":101,"first":101}\n\n')
  })
})
