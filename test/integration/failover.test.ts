import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { STANDBY_NOTE, startRelay, type Relay } from '../../relay/relay.ts'
import { pruneOnce } from '../../relay/retention.ts'
import { startProxy } from '../support/proxy.ts'
import { relayConfig, startStack, testLog, type Stack } from '../support/stack.ts'

let s: Stack
beforeAll(async () => {
  s = await startStack()
})
afterAll(() => s?.stop())

const until = async (what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 15_000) => {
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('hot standby', () => {
  it('a second relay waits without LISTEN, takes over when the leader stops or loses its lock session, never two leaders', async () => {
    const sql = s.db.sql
    const listeners = async () =>
      (
        await sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'edge-relay-listen'`
      )[0]!.n as number
    let maxListeners = 0
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        maxListeners = Math.max(maxListeners, await listeners())
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    const a = s.relay!
    let b: Relay | undefined
    let c: Relay | undefined
    try {
      const said: string[] = []
      b = await startRelay({
        config: relayConfig(s.db.url, s.edge.url),
        log: (level, msg, f) => (said.push(`${level} ${msg}`), testLog(level, msg, f)),
      })
      expect(a.health()).toMatchObject({ role: 'leader', ok: true, listening: true })
      expect(a.health()).not.toHaveProperty('note')
      // A standby is not silent: it says at start, and in /healthz, that it delivers nothing until it leads.
      expect(b.health()).toMatchObject({ role: 'standby', ok: true, listening: false, note: STANDBY_NOTE })
      expect(said).toContain(`warn ${STANDBY_NOTE}`)
      expect(STANDBY_NOTE).toMatch(/^another relay leads this database: this one is a hot standby and delivers nothing/)
      expect(typeof a.health().notificationQueueUsage).toBe('number')

      const sub = await s.subscribe('standby')
      for (let i = 1; i <= 10; i++) await s.publish('standby', 't', { i })
      await sub.waitFor((m) => m.filter((x) => x.id).length === 10)

      // 1. The leader stops (as on SIGTERM): the standby takes over and catches up from the cursors.
      await s.stopRelay()
      for (let i = 11; i <= 20; i++) await s.publish('standby', 't', { i })
      await until('b leads', () => b!.health().role === 'leader')
      await sub.waitFor((m) => m.filter((x) => x.id).length === 20)

      // 2. The leader's lock session is cut: it stops at once, and the new standby takes over.
      c = await startRelay({ config: relayConfig(s.db.url, s.edge.url), log: testLog })
      expect(c.health().role).toBe('standby')
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and application_name = 'edge-relay-leader'
                  and pid in (select pid from pg_locks where locktype = 'advisory' and granted)`
      for (let i = 21; i <= 30; i++) await s.publish('standby', 't', { i })
      await until('one leader again', () => [b!, c!].filter((r) => r.health().role === 'leader').length === 1)
      await sub.waitFor((m) => m.filter((x) => x.id).length === 30)
      expect(sub.seqs()).toEqual(range(1, 30))
      await until('one LISTEN', async () => (await listeners()) === 1)
      sub.close()
    } finally {
      sampling = false
      await sampler
      await b?.stop()
      await c?.stop()
      await s.startRelay()
    }
    expect(maxListeners).toBe(1)
  })
})

describe('poll mode', () => {
  it('RELAY_MODE=poll with relay.notify = off: no LISTEN, no NOTIFY, every event arrives', async () => {
    const stack = await startStack({ relay: { RELAY_MODE: 'poll', RELAY_SWEEP_MS: '100' } })
    const probe = postgres(stack.db.url, { max: 1, onnotice: () => {} })
    let writer: ReturnType<typeof postgres> | undefined
    try {
      await stack.db.sql.unsafe(`alter database "${stack.db.name}" set relay.notify = 'off'`)
      writer = postgres(stack.db.url, { max: 2, onnotice: () => {} }) // new sessions pick the setting up
      const nudges: string[] = []
      await probe.listen('relay', (p) => nudges.push(p))
      const [{ n }] = (await stack.db.sql`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and application_name = 'edge-relay-listen'`) as unknown as [{ n: number }]
      expect(n).toBe(0)
      expect(stack.relay!.health()).toMatchObject({ role: 'leader', mode: 'poll', ok: true })
      const sub = await stack.subscribe('polled')
      for (let i = 1; i <= 20; i++) await writer`select relay.publish('polled', 't', ${writer.json({ i })})`
      await sub.waitFor((m) => m.filter((x) => x.id).length === 20)
      expect(sub.seqs()).toEqual(range(1, 20))
      expect(nudges).toEqual([])
      sub.close()
    } finally {
      await writer?.end()
      await probe.end()
      await stack.stop()
    }
  })
})

describe('retention', () => {
  it('prunes outside the window, never past the smallest cursor of the configured edges', async () => {
    const sql = s.db.sql
    const sub = await s.subscribe('retain')
    for (let i = 1; i <= 50; i++) await s.publish('retain', 't', { i })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 50)
    await until('cursor at 50', async () => (await sql`select delivered from relay.cursors where tenant = 'retain'`)[0]?.delivered === '50')
    const held = async () => (await sql`select min(seq)::int as lo, count(*)::int as n from relay.events where tenant = 'retain'`)[0]!
    // An edge that never confirmed anything holds everything back.
    expect(await pruneOnce({ sql, edges: [s.edge.url, 'http://127.0.0.1:1'], ageS: 0, count: 10 })).toBe(0)
    expect(await held()).toEqual({ lo: 1, n: 50 })
    await pruneOnce({ sql, edges: [s.edge.url], ageS: 0, count: 10 })
    expect(await held()).toEqual({ lo: 41, n: 10 })
    // By age: everything is older than 1 s, but the undelivered tail stays.
    await sql`update relay.cursors set delivered = 45 where tenant = 'retain'`
    await new Promise((r) => setTimeout(r, 1_100))
    await pruneOnce({ sql, edges: [s.edge.url], ageS: 1, count: 0 })
    expect(await held()).toEqual({ lo: 46, n: 5 })
    // A room that lost its memory gets a rebase from what the outbox still holds. A resume from before it, connected
    // while the room is empty, gets `reset` at the rebase and then everything the room is refilled with.
    s.edge.rooms.rooms.delete('retain')
    const late = await s.subscribe('retain', { lastEventId: 10 })
    await s.publish('retain', 't', { i: 51 })
    await late.waitFor((m) => m.some((x) => x.id === '51'))
    expect(late.messages.filter((m) => m.event === 'reset').map((m) => m.data)).toEqual(['{"head":45,"first":46}'])
    expect(late.seqs()).toEqual([46, 47, 48, 49, 50, 51])
    // One that connects after the refill gets `reset` at the head, then live events.
    const later = await s.subscribe('retain', { lastEventId: 10 })
    await later.waitFor((m) => m.some((x) => x.event === 'reset'))
    await s.publish('retain', 't', { i: 52 })
    await later.waitFor((m) => m.some((x) => x.id === '52'))
    expect(later.messages.filter((m) => m.event === 'reset').map((m) => m.data)).toEqual(['{"head":51,"first":46}'])
    expect(later.seqs()).toEqual([52])
    sub.close()
    late.close()
    later.close()
  })

  it('the relay prunes on its own timer', async () => {
    const stack = await startStack({ relay: { RELAY_RETENTION_COUNT: '5' } })
    try {
      const sub = await stack.subscribe('auto')
      for (let i = 1; i <= 20; i++) await stack.publish('auto', 't', { i })
      await sub.waitFor((m) => m.filter((x) => x.id).length === 20)
      await until('pruned to 5', async () => (await stack.db.sql`select count(*)::int as n from relay.events`)[0]!.n === 5)
      await until('reported', () => (stack.relay!.health().retention?.pruned ?? 0) === 15)
      sub.close()
    } finally {
      await stack.stop()
    }
  })
})

describe('a silent network cut between the leader and Postgres', () => {
  it('the leader stops on its own (lock check times out) before the standby takes over; nothing is lost', async () => {
    const stack = await startStack()
    await stack.stopRelay() // replaced by one that reaches Postgres through a proxy we can freeze
    const pgUrl = new URL(stack.db.url)
    const proxy = await startProxy(Number(pgUrl.port))
    const viaProxy = new URL(stack.db.url)
    viaProxy.port = new URL(proxy.url).port
    const config = (url: string) => relayConfig(url, stack.edge.url)
    const a = await startRelay({ config: config(viaProxy.toString()), log: testLog })
    const b = await startRelay({ config: config(stack.db.url), log: testLog })
    let twoLeaders = false
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        if (a.health().role === 'leader' && b.health().role === 'leader') twoLeaders = true
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    try {
      expect([a.health().role, b.health().role]).toEqual(['leader', 'standby'])
      const sub = await stack.subscribe('cut')
      for (let i = 1; i <= 5; i++) await stack.publish('cut', 't', { i })
      await sub.waitFor((m) => m.filter((x) => x.id).length === 5)
      proxy.freeze()
      const frozenAt = Date.now()
      for (let i = 6; i <= 15; i++) await stack.publish('cut', 't', { i })
      await until('a to step down', () => a.health().role === 'standby', 10_000)
      const steppedDown = Date.now() - frozenAt
      await until('b to lead', () => b.health().role === 'leader', 10_000)
      await sub.waitFor((m) => m.filter((x) => x.id).length === 15, 15_000)
      expect(sub.seqs()).toEqual(range(1, 15))
      expect(steppedDown).toBeGreaterThanOrEqual(1_500) // by its own check's timeout, not by a closed socket
      sub.close()
    } finally {
      sampling = false
      await sampler
      await b.stop()
      await proxy.close()
      await a.stop()
      await stack.stop()
    }
    expect(twoLeaders).toBe(false)
  })
})
