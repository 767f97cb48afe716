import { describe, expect, it } from 'vitest'
import { RoomObject } from '../../edge/room/durable/room-object.ts'
import { workersSettings } from '../support/settings.ts'
import { batch, roomSocket, turn, withRoomObject } from './room-sockets.ts'

const settings = (over: Record<string, string> = {}) => workersSettings({ HISTORY_LIMIT: '10000', HISTORY_MAX_AGE_S: '0', ...over })

describe('Durable Object room: answers a batch once it is stored, fans it out after', () => {
  it('answers before any subscriber is sent the batch (not even in a microtask), and sends it on the next turn', async () => {
    await withRoomObject('fan-out-after', async (sql) => {
      const room = new RoomObject(sql, settings())
      const s = roomSocket()
      room.connect(s.ws, { topics: {} }, 't')
      expect(room.publish({ tenant: 't', events: batch(1, 2) })).toEqual({ tenant: 't', head: 2 })
      await Promise.resolve()
      expect(room.history.head).toBe(2)
      expect(s.seqs()).toEqual([])
      await turn()
      expect(s.seqs()).toEqual([1, 2])
    })
  })

  it('a subscriber joining between the store and the fan-out gets each event once; batches and a rebase keep their order', async () => {
    await withRoomObject('fan-out-seam', async (sql) => {
      const room = new RoomObject(sql, settings())
      const early = roomSocket()
      room.connect(early.ws, { topics: {}, lastEventId: 0 }, 't')
      room.publish({ tenant: 't', events: batch(1, 3) })
      // Stored, not yet fanned out: one resumes (its replay reads them from the history), one starts live at the head.
      const resumed = roomSocket()
      room.connect(resumed.ws, { topics: {}, lastEventId: 1 }, 't')
      const live = roomSocket()
      room.connect(live.ws, { topics: {} }, 't')
      room.publish({ tenant: 't', events: batch(4, 5) })
      room.publish({ tenant: 't', events: batch(8, 9), rebase: true }) // 6 and 7 never come
      const late = roomSocket()
      room.connect(late.ws, { topics: {}, lastEventId: 5 }, 't') // the history starts at 8 now
      await turn()
      expect(early.seqs()).toEqual([1, 2, 3, 4, 5, 8, 9])
      expect(resumed.seqs()).toEqual([2, 3, 4, 5, 8, 9])
      expect(live.seqs()).toEqual([4, 5, 8, 9])
      expect(late.seqs()).toEqual([])
      // Those that had 5 are told to refetch right before 8; the late one was told at once, as it joined.
      const reset = 'event: reset\ndata: {"head":7,"first":8}\n\n'
      for (const s of [early, resumed, live]) expect(s.sent.join('')).toContain(`${reset}id: 8\n`)
      expect(late.sent[0]).toBe('event: reset\ndata: {"head":9,"first":8}\n\n')
      room.publish({ tenant: 't', events: batch(10, 10) })
      await turn()
      for (const s of [early, resumed, live, late]) expect(s.seqs().at(-1)).toBe(10)
      expect(late.seqs()).toEqual([10])
    })
  })

  it('fans out a turn at a time: a batch stored between turns reaches every subscriber after the one before, once', async () => {
    await withRoomObject('fan-out-turns', async (sql) => {
      const room = new RoomObject(sql, settings())
      const subs = Array.from({ length: 600 }, () => roomSocket())
      for (const s of subs) room.connect(s.ws, { topics: {} }, 't')
      room.publish({ tenant: 't', events: batch(1, 1) })
      await turn()
      const reached = subs.filter((s) => s.seqs().length > 0).length
      expect(reached).toBeGreaterThan(0)
      expect(reached).toBeLessThan(subs.length)
      expect(room.publish({ tenant: 't', events: batch(2, 2) })).toEqual({ tenant: 't', head: 2 })
      const joined = roomSocket()
      room.connect(joined.ws, { topics: {}, lastEventId: 0 }, 't')
      for (let i = 0; i < 10; i++) await turn()
      expect(subs.filter((s) => s.seqs().join() !== '1,2')).toEqual([])
      expect(joined.seqs()).toEqual([1, 2])
    })
  })

  it('a room whose fan-out lags far behind finishes it before it takes the next batch (the relay waits)', async () => {
    await withRoomObject('fan-out-backlog', async (sql) => {
      const room = new RoomObject(sql, settings())
      const s = roomSocket()
      room.connect(s.ws, { topics: {} }, 't')
      room.publish({ tenant: 't', events: batch(1, 1100) })
      room.publish({ tenant: 't', events: batch(1101, 1101) })
      await Promise.resolve() // the first batch went out before the second was taken: no turn needed
      expect(s.seqs()).toEqual(batch(1, 1100).map((e) => e.seq))
      await turn()
      expect(s.seqs().at(-1)).toBe(1101)
    })
  })
})
