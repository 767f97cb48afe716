import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../support/stack.ts'

let s: Stack
beforeAll(async () => {
  s = await startStack()
})
afterAll(() => s?.stop())

const expectExactly = (seqs: number[], from: number, to: number) =>
  expect(seqs).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i))

describe('nothing committed is lost', () => {
  it('relay stopped, 100 events committed, relay started: all 100 arrive in order, once', async () => {
    const sub = await s.subscribe('offline')
    const first = await s.publish('offline', 't', { i: 0 })
    await sub.waitFor((m) => m.some((x) => x.id === String(first)))
    await s.stopRelay()
    for (let i = 1; i <= 100; i++) await s.publish('offline', i % 2 ? 'odd' : 'even', { i })
    expect(sub.seqs()).toEqual([first]) // nothing can arrive without a relay
    await s.startRelay()
    await sub.waitFor((m) => m.filter((x) => x.id).length === 101)
    expectExactly(sub.seqs(), 1, 101)
    sub.close()
  })

  it('the LISTEN backend killed with pg_terminate_backend: events committed around it all arrive', async () => {
    const sub = await s.subscribe('killed')
    const sql = s.db.sql
    const listeners = async () =>
      sql<{ pid: number }[]>`
        select pid from pg_stat_activity
        where datname = current_database() and application_name = 'edge-relay-listen' and query ilike 'listen%'`
    const before = await listeners()
    expect(before).toHaveLength(1) // exactly one LISTEN connection
    for (let i = 1; i <= 10; i++) await s.publish('killed', 't', { i })
    await sql`select pg_terminate_backend(${before[0]!.pid})`
    for (let i = 11; i <= 30; i++) await s.publish('killed', 't', { i }) // committed while nobody listens
    await sub.waitFor((m) => m.filter((x) => x.id).length === 30, 15_000)
    expectExactly(sub.seqs(), 1, 30)
    let after = await listeners()
    for (let i = 0; i < 100 && after.length !== 1; i++) after = (await new Promise((r) => setTimeout(r, 50)), await listeners())
    expect(after).toHaveLength(1)
    expect(after[0]!.pid).not.toBe(before[0]!.pid)
    // and live delivery works on the new connection
    await s.publish('killed', 't', { i: 31 })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 31)
    expectExactly(sub.seqs(), 1, 31)
    sub.close()
  })

  it('the edge restarted with empty rooms: the relay refills the room so resume still works', async () => {
    for (let i = 1; i <= 20; i++) await s.publish('refill', 't', { i })
    const warm = await s.subscribe('refill', { lastEventId: 0 })
    await warm.waitFor((m) => m.filter((x) => x.id).length === 20)
    warm.close()
    // The room forgets everything (as an edge restart would); the relay's cursor still says 20.
    s.edge.rooms.rooms.delete('refill')
    await s.publish('refill', 't', { i: 21 })
    const sub = await s.subscribe('refill', { lastEventId: 10 })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 11, 15_000)
    expectExactly(sub.seqs(), 11, 21)
    sub.close()
  })

  it('a resume older than the room history gets event: reset, then live events', async () => {
    const stack = await startStack({ edge: { HISTORY_LIMIT: '5' } })
    try {
      for (let i = 1; i <= 12; i++) await stack.publish('short', 't', { i })
      const warm = await stack.subscribe('short', { lastEventId: 11 })
      await warm.waitFor((m) => m.some((x) => x.id === '12'))
      warm.close()
      const sub = await stack.subscribe('short', { lastEventId: 2 })
      await sub.waitFor((m) => m.some((x) => x.event === 'reset'))
      expect(sub.messages[0]).toMatchObject({ event: 'reset' })
      expect(sub.messages[0]!.id).toBeUndefined()
      await stack.publish('short', 't', { i: 13 })
      await sub.waitFor((m) => m.some((x) => x.id === '13'))
      expect(sub.seqs()).toEqual([13])
      const ok = await stack.subscribe('short', { lastEventId: 8 }) // 9..13 is inside the history of 5
      await ok.waitFor((m) => m.filter((x) => x.id).length === 5)
      expect(ok.seqs()).toEqual([9, 10, 11, 12, 13])
      sub.close()
      ok.close()
    } finally {
      await stack.stop()
    }
  })
})
