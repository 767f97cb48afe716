import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { outbox } from '../../relay/outbox.ts'
import { LATE_MS, RECENT_MS, startPoller } from '../../relay/poller.ts'
import { startStack, testLog, type Stack } from '../support/stack.ts'

/**
 * RELAY_MODE=poll (relay/poller.ts): the relay reads the heads stamped since its last polls. The stack's sweep is
 * an hour here, so whatever arrives was found by the poller, not by the safety net.
 */
let s: Stack
let writer: postgres.Sql
beforeAll(async () => {
  s = await startStack({ relay: { RELAY_MODE: 'poll', RELAY_SWEEP_MS: '3600000' } })
  // Writers of a poll-mode database skip NOTIFY (per session here; `alter database … set relay.notify` in production).
  writer = postgres(s.db.url, { max: 4, onnotice: () => {}, connection: { 'relay.notify': 'off' } })
})
afterAll(async () => {
  await writer?.end()
  await s?.stop()
})

const publish = (tenant: string, n: number) => writer`select relay.publish(${tenant}, 't', ${writer.json({ n })})`
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A transaction that has published to `tenant` (taking its stamp) and stays open until `commit()`. */
const openPublisher = async (tenant: string) => {
  const tx = await writer.reserve()
  await tx`begin`
  await tx`select relay.publish(${tenant}, 't', '{"late":true}')`
  return {
    commit: async () => {
      await tx`commit`
      tx.release()
    },
  }
}

describe('poll mode', () => {
  it('delivers every event of several tenants, in order, without NOTIFY or a sweep', async () => {
    const probe = postgres(s.db.url, { max: 1, onnotice: () => {} })
    const nudges: string[] = []
    await probe.listen('relay', (p) => nudges.push(p))
    const subs = await Promise.all(['p-a', 'p-b', 'p-c'].map((t) => s.subscribe(t)))
    try {
      for (let i = 1; i <= 30; i++) await publish(['p-a', 'p-b', 'p-c'][i % 3]!, i)
      await writer`select relay.publish_many('p-a', 't', array['1', '2', '3']::jsonb[])`
      for (const [i, sub] of subs.entries()) await sub.waitFor((m) => m.filter((x) => x.id).length === (i === 0 ? 13 : 10))
      expect(subs.map((sub) => sub.seqs())).toEqual([range(1, 13), range(1, 10), range(1, 10)])
      expect(nudges).toEqual([])
      expect(s.relay!.health()).toMatchObject({ mode: 'poll', ok: true, listening: false })
    } finally {
      for (const sub of subs) sub.close()
      await probe.end()
    }
  })

  it('the poller reports a late committer: a stamp taken before one a poll has already seen', async () => {
    const changes: string[] = []
    const poller = startPoller({ outbox: outbox(s.db.sql), onChange: (t) => changes.push(t), log: testLog })
    try {
      await new Promise((r) => setTimeout(r, 50)) // the poller has read its starting stamp
      const late = await openPublisher('late-unit') // takes stamp N and stays open
      await publish('early-unit', 1) // N + 1, committed first
      await expect.poll(() => changes.includes('early-unit')).toBe(true)
      expect(changes).not.toContain('late-unit')
      await late.commit()
      await expect.poll(() => changes.includes('late-unit')).toBe(true)
      expect(changes.filter((t) => t === 'late-unit')).toHaveLength(1)
    } finally {
      await poller.stop()
    }
  })

  it(`delivers end to end a late committer that stays open past the recent window (${RECENT_MS} ms), within ${LATE_MS} ms`, async () => {
    const lateSub = await s.subscribe('late')
    const earlySub = await s.subscribe('early')
    try {
      const late = await openPublisher('late')
      await publish('early', 1)
      await earlySub.waitFor((m) => m.some((x) => x.id === '1')) // a poll has seen the later stamp
      await new Promise((r) => setTimeout(r, RECENT_MS * 3)) // ordinary polls no longer read back to it; deep ones do
      await late.commit()
      await lateSub.waitFor((m) => m.some((x) => x.id === '1'))
      expect(lateSub.seqs()).toEqual([1])
    } finally {
      lateSub.close()
      earlySub.close()
    }
  })

  it('after a relay restart, delivers what was committed while it was down, then live events', async () => {
    const sub = await s.subscribe('p-restart')
    try {
      for (let i = 1; i <= 5; i++) await publish('p-restart', i)
      await sub.waitFor((m) => m.filter((x) => x.id).length === 5)
      await s.stopRelay()
      for (let i = 6; i <= 10; i++) await publish('p-restart', i)
      await s.startRelay()
      await sub.waitFor((m) => m.filter((x) => x.id).length === 10)
      for (let i = 11; i <= 15; i++) await publish('p-restart', i)
      await sub.waitFor((m) => m.filter((x) => x.id).length === 15)
      expect(sub.seqs()).toEqual(range(1, 15))
    } finally {
      sub.close()
    }
  })
})

describe('poll mode: the sweep as safety net', () => {
  it(`a transaction open longer than the poller's window (${LATE_MS} ms) after its publish is delivered by the sweep`, async () => {
    const swept = await startStack({ relay: { RELAY_MODE: 'poll', RELAY_SWEEP_MS: '300' } })
    const w = postgres(swept.db.url, { max: 2, onnotice: () => {}, connection: { 'relay.notify': 'off' } })
    try {
      const lateSub = await swept.subscribe('slow-tx')
      const earlySub = await swept.subscribe('quick-tx')
      const tx = await w.reserve()
      await tx`begin`
      await tx`select relay.publish('slow-tx', 't', '{}')`
      await w`select relay.publish('quick-tx', 't', '{}')`
      await earlySub.waitFor((m) => m.some((x) => x.id === '1'))
      await new Promise((r) => setTimeout(r, LATE_MS + 200)) // the poller's window has moved past the stamp
      await tx`commit`
      tx.release()
      await lateSub.waitFor((m) => m.some((x) => x.id === '1'))
      lateSub.close()
      earlySub.close()
    } finally {
      await w.end()
      await swept.stop()
    }
  })
})
