import { describe, expect, it } from 'vitest'
import type { WireEvent } from '../../shared/schema.ts'
import { createSseParser } from '../../shared/sse-parse.ts'
import { boundedStream } from './queue.ts'
import { Room } from './room.ts'
import { testHistory, testRooms } from '../../test/support/rooms.ts'
import type { QueueLimits } from './queue.ts'
import type { ConnectRequest } from './stub.ts'
import { readableSink, runStream } from './stream.ts'

const bytes = (n: number) => new Uint8Array(n)
const ev = (seq: number): WireEvent => ({ seq, topic: 't', data: JSON.stringify({ seq }), ts: 0 })
const batch = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ev(from + i))

/** Reads everything a stream yields until it ends or errors. */
const drain = async (stream: ReadableStream<Uint8Array>) => {
  const seqs: number[] = []
  const feed = createSseParser((m) => m.id !== undefined && seqs.push(Number(m.id)))
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { seqs, error: undefined }
      feed(decoder.decode(value, { stream: true }))
    }
  } catch (err) {
    return { seqs, error: String(err) }
  }
}

/** The portable path over one room, as memoryRooms wires it. */
const streamFromRoom = (room: Room, request: ConnectRequest, limits: QueueLimits) =>
  readableSink(limits, (sink) => runStream(sink, request, () => room.subscribe(request, sink)))

describe('boundedStream', () => {
  it('refuses a push beyond the event bound or the byte bound; reading frees both', async () => {
    const q = boundedStream({ bytes: 100, events: 3 }, () => {})
    expect([q.push(bytes(10)), q.push(bytes(10)), q.push(bytes(10))]).toEqual([true, true, true])
    expect(q.push(bytes(1))).toBe(false) // 4th event
    expect(q.queued).toEqual({ bytes: 30, events: 3 })
    const reader = q.stream.getReader()
    expect((await reader.read()).value?.byteLength).toBe(30) // everything queued, in one chunk
    expect(q.queued).toEqual({ bytes: 0, events: 0 })
    expect(q.push(bytes(101))).toBe(false) // over the byte bound on its own
    expect(q.push(bytes(60))).toBe(true)
    expect(q.push(bytes(41))).toBe(false) // 101 bytes
    expect(q.push(bytes(500), true)).toBe(true) // forced: outside the bounds
    expect(q.queued).toEqual({ bytes: 60, events: 1 })
    q.end()
    expect((await reader.read()).value?.byteLength).toBe(560)
    expect((await reader.read()).done).toBe(true)
  })

  it('abort discards the queue and errors the stream; it is told the stream ended, once', async () => {
    let ended = 0
    const q = boundedStream({ bytes: 100, events: 3 }, () => ended++)
    q.push(bytes(10))
    q.abort()
    await expect(q.stream.getReader().read()).rejects.toThrow(/too slow/)
    expect(q.push(bytes(1))).toBe(false)
    q.abort()
    expect(ended).toBe(1)
  })
})

describe('streamFromRoom', () => {
  it('drops a subscriber that reads nothing once it is `events` behind; the room and others go on', async () => {
    const room = new Room('r', { history: testHistory(1000) })
    const stalled = streamFromRoom(room, { topics: {}, retryMs: 1000 }, { bytes: 1 << 20, events: 10 })
    const fast = streamFromRoom(room, { topics: {}, retryMs: 1000 }, { bytes: 1 << 20, events: 10 })
    const fastDone = drain(fast)
    for (let i = 1; i <= 30; i++) {
      room.publish({ tenant: 'r', events: [ev(i)] })
      await new Promise((r) => setImmediate(r)) // let the fast reader read
    }
    expect(room.slowDropped).toBe(1)
    expect(room.size).toBe(1)
    const slow = await drain(stalled)
    expect(slow.error).toMatch(/too slow/)
    expect(slow.seqs).toEqual([]) // its queue was discarded: it resumes from its Last-Event-ID
    room.closeAll()
    expect((await fastDone).seqs).toEqual(batch(1, 30).map((e) => e.seq))
  })

  it('drops on the byte bound too', () => {
    const room = new Room('r', { history: testHistory(1000) })
    streamFromRoom(room, { topics: {}, retryMs: 1000 }, { bytes: 200, events: 1000 })
    room.publish({ tenant: 'r', events: batch(1, 20) }) // ~40 bytes a frame
    expect(room.slowDropped).toBe(1)
  })

  it('a resume that replays more than the bounds is not slowness', async () => {
    const room = new Room('r', { history: testHistory(1000) })
    room.publish({ tenant: 'r', events: batch(1, 500) })
    const s = streamFromRoom(room, { topics: {}, retryMs: 1000, lastEventId: 100 }, { bytes: 1000, events: 10 })
    const done = drain(s)
    await new Promise((r) => setImmediate(r))
    room.publish({ tenant: 'r', events: batch(501, 505) })
    await new Promise((r) => setImmediate(r))
    room.closeAll()
    const got = await done
    expect(room.slowDropped).toBe(0)
    expect(got.seqs).toEqual(batch(101, 505).map((e) => e.seq))
  })
})

describe('memoryRooms', () => {
  it('logs a dropped slow subscriber with its tenant and the bytes it had queued, and counts it', async () => {
    const lines: { msg: string; fields?: Record<string, unknown> }[] = []
    const rooms = testRooms(
      { SUBSCRIBER_QUEUE_BYTES: 4096 },
      { log: (_, msg, fields) => lines.push({ msg, ...(fields ? { fields } : {}) }) },
    )
    const stream = await rooms.get('slowpoke').connect({ topics: {}, retryMs: 1000 })
    for (let seq = 1; seq <= 200 && rooms.room('slowpoke').size > 0; seq++)
      await rooms.get('slowpoke').publish({ tenant: 'slowpoke', events: [ev(seq)] })
    expect(rooms.room('slowpoke').slowDropped).toBe(1)
    expect(lines).toEqual([{ msg: expect.stringMatching(/too slow/), fields: { tenant: 'slowpoke', queuedBytes: expect.any(Number) } }])
    expect(lines[0]!.fields!.queuedBytes).toBeGreaterThan(4000)
    await stream.cancel().catch(() => {})
    rooms.close()
  })
})
