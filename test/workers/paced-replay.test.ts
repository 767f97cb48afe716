import { describe, expect, it } from 'vitest'
import { REPLAY_ROUND_EVENTS } from '../../edge/room/room.ts'
import { streamFromSocket, type ClientSocket } from '../../edge/room/durable/socket-stream.ts'
import { RoomObject } from '../../edge/room/durable/room-object.ts'
import { ROOM_SOCKET } from '../../shared/protocol.ts'
import { workersSettings } from '../support/settings.ts'
import { batch, roomSocket, turn, withRoomObject } from './room-sockets.ts'

describe('Durable Object room: a replay goes out in rounds the Worker asks for', () => {
  it('one round per ask; live events wait behind the replay; then live, also across a wake from hibernation', async () => {
    await withRoomObject('paced-rounds', async (sql) => {
      const options = workersSettings({ HISTORY_LIMIT: '10000', HISTORY_MAX_AGE_S: '0' })
      const room = new RoomObject(sql, options)
      room.publish({ tenant: 't', events: batch(1, 600) })
      const s = roomSocket()
      room.connect(s.ws, { topics: {}, lastEventId: 0 }, 't')
      expect(s.seqs()).toEqual(batch(1, REPLAY_ROUND_EVENTS).map((e) => e.seq))
      expect(s.last()).toBe(ROOM_SOCKET.pause)
      room.publish({ tenant: 't', events: batch(601, 601) }) // waits its turn in the history
      expect(s.seqs()).toHaveLength(REPLAY_ROUND_EVENTS)

      // The object sleeps and wakes mid-replay: the socket's attachment says where it was.
      const woken = new RoomObject(sql, options, [s.ws])
      woken.more(s.ws)
      expect(s.seqs()).toHaveLength(2 * REPLAY_ROUND_EVENTS)
      expect(s.last()).toBe(ROOM_SOCKET.pause)
      woken.more(s.ws)
      expect(s.last()).toBe(ROOM_SOCKET.live)
      woken.publish({ tenant: 't', events: batch(602, 602) })
      await turn()
      expect(s.seqs()).toEqual(batch(1, 602).map((e) => e.seq))
      woken.more(s.ws) // an ask after the replay ended sends nothing
      expect(s.seqs()).toHaveLength(602)
    })
  })

  it('a socket that starts live is told so at once; one whose replay the history outran gets reset', async () => {
    await withRoomObject('paced-outrun', async (sql) => {
      const room = new RoomObject(sql, workersSettings({ HISTORY_LIMIT: '300', HISTORY_MAX_AGE_S: '0' }))
      room.publish({ tenant: 't', events: batch(1, 300) })
      const live = roomSocket()
      room.connect(live.ws, { topics: {} }, 't')
      expect(live.sent).toEqual([ROOM_SOCKET.live])
      const slow = roomSocket()
      room.connect(slow.ws, { topics: {}, lastEventId: 0 }, 't')
      room.publish({ tenant: 't', events: batch(301, 700) }) // 1..400 leave the history while it waits
      room.more(slow.ws)
      await turn()
      expect(slow.sent.slice(-2)).toEqual(['event: reset\ndata: {"head":700,"first":401}\n\n', ROOM_SOCKET.live])
      room.publish({ tenant: 't', events: batch(701, 701) })
      await turn()
      expect(slow.seqs().at(-1)).toBe(701)
    })
  })
})

/** The Worker's end of a room socket: the test plays the room. */
const clientSocket = () => {
  const listeners = new Map<string, ((e: { data: unknown }) => void)[]>()
  const sent: string[] = []
  let closed = false
  const ws: ClientSocket = {
    accept: () => {},
    send: (m) => void sent.push(m),
    close: () => void (closed = true),
    addEventListener: (type: string, fn: (e: { data: unknown }) => void) => void listeners.set(type, [...(listeners.get(type) ?? []), fn]),
  }
  const emit = (data: string) => {
    for (const fn of listeners.get('message') ?? []) fn({ data })
  }
  return { ws, sent, emit, closed: () => closed }
}

describe('Worker side: asks for the next round only once the browser has read', () => {
  it('a replay round larger than the queue is not slowness; `more` goes after a read; after `live` the bound holds', async () => {
    const room = clientSocket()
    const stream = streamFromSocket(room.ws, { retryMs: 1000, heartbeatMs: 60_000 }, { queueBytes: 1000 })
    const reader = stream.getReader()
    const frame = (seq: number) => `id: ${seq}\nevent: t\ndata: ${JSON.stringify({ pad: 'x'.repeat(500) })}\n\n`
    room.emit(frame(1) + frame(2) + frame(3)) // ~1.6 KB: over the 1,000-byte queue
    room.emit(ROOM_SOCKET.pause)
    expect(room.sent).toEqual([]) // the browser has not read yet
    expect(room.closed()).toBe(false)
    const text = new TextDecoder()
    let got = ''
    while (!got.includes('id: 3\n')) got += text.decode((await reader.read()).value)
    // The response pump always has its next read pending: that is when the stream asks for more.
    const next = reader.read()
    await new Promise((r) => setTimeout(r, 0))
    expect(room.sent).toEqual([ROOM_SOCKET.more])
    room.emit(frame(4))
    expect(text.decode((await next).value)).toBe(frame(4))
    room.emit(ROOM_SOCKET.live)
    expect(room.sent).toEqual([ROOM_SOCKET.more])
    for (let seq = 5; seq <= 8; seq++) room.emit(frame(seq)) // live, unread: over the bound → dropped
    expect(room.closed()).toBe(true)
    await reader.cancel()
  })
})
