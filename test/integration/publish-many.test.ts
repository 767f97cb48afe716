import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MIGRATIONS_DIR, migrate } from '../../relay/migrate.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'

/** migrations/0005_change_stamps.sql on real PostgreSQL: change stamps on heads, and relay.publish_many(). */
let db: TestDb
beforeAll(async () => {
  db = await freshDatabase()
})
afterAll(() => db?.drop())

const head = async (tenant: string) =>
  (await db.sql<{ seq: string; stamp: string | null }[]>`select seq, stamp from relay.heads where tenant = ${tenant}`).map((r) => ({
    seq: Number(r.seq),
    stamp: r.stamp === null ? null : Number(r.stamp),
  }))[0]
const events = async (tenant: string) =>
  (
    await db.sql<{ seq: string; topic: string; data: string }[]>`
    select seq, topic, data::text as data from relay.events where tenant = ${tenant} order by seq`
  ).map((r) => [Number(r.seq), r.topic, r.data])

/** Notifications on 'relay' while `fn` runs (a listener of our own; LISTEN/NOTIFY is per database). */
const nudgesDuring = async (fn: () => Promise<unknown>) => {
  const probe = postgres(db.url, { max: 1, onnotice: () => {} })
  const got: string[] = []
  try {
    await probe.listen('relay', (p) => got.push(p))
    await fn()
    await db.sql`select relay.publish('sentinel', 't', '{}')` // delivered after anything fn's commits sent
    for (let i = 0; i < 200 && !got.includes('sentinel'); i++) await new Promise((r) => setTimeout(r, 10))
  } finally {
    await probe.end()
  }
  return got.filter((t) => t !== 'sentinel')
}

describe('change stamps', () => {
  it('every publish stamps its head from one sequence, higher each time, readable through the stamp index', async () => {
    await db.sql`select relay.publish('st-a', 't', '{}')`
    const a1 = (await head('st-a'))!.stamp!
    await db.sql`select relay.publish('st-b', 't', '{}')`
    await db.sql`select relay.publish('st-a', 't', '{}')`
    const a2 = (await head('st-a'))!
    const b = (await head('st-b'))!
    expect(a2.seq).toBe(2)
    expect(a1).toBeLessThan(b.stamp!)
    expect(b.stamp!).toBeLessThan(a2.stamp!)
    const changed = await db.sql`select tenant from relay.heads where stamp > ${a1} order by stamp`
    expect(changed.map((r) => r.tenant)).toEqual(['st-b', 'st-a'])
    const plan = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`
      return tx.unsafe(`explain select tenant, seq, stamp from relay.heads where stamp > ${a1} order by stamp`)
    })
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/heads_stamp/)
  })

  it('a publisher that waited for the head-row lock gets a stamp above the one it waited for', async () => {
    const t1 = await db.sql.reserve()
    try {
      await t1`begin`
      await t1`select relay.publish('st-lock', 't', '1')`
      const second = db.sql`select relay.publish('st-lock', 't', '2')` // waits for t1's row lock
      await new Promise((r) => setTimeout(r, 100))
      const [{ stamp: later }] = (await t1`select nextval('relay.change_stamp') as stamp`) as unknown as [{ stamp: string }]
      await t1`commit`
      await second
      expect((await head('st-lock'))!.stamp!).toBeGreaterThan(Number(later))
    } finally {
      t1.release()
    }
  })

  it('upgrades a database published to before 0005: old heads have no stamp until their next publish', async () => {
    const old = await freshDatabase('er_test_upgrade')
    const dir = mkdtempSync(join(tmpdir(), 'edge-relay-migrations-'))
    try {
      // freshDatabase applied every migration: start again from a schema of 0001–0004 only.
      await old.sql`drop schema relay cascade`
      for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '0005')) cpSync(join(MIGRATIONS_DIR, f), join(dir, f))
      await migrate(old.sql, dir)
      await old.sql`select relay.publish('up', 't', '1')`
      // 0005 and whatever came after it.
      expect((await migrate(old.sql))[0]).toBe('0005_change_stamps.sql')
      expect((await old.sql`select seq, stamp from relay.heads`).map((r) => [Number(r.seq), r.stamp])).toEqual([[1, null]])
      await old.sql`select relay.publish('up', 't', '2')`
      const [row] = await old.sql`select seq, stamp from relay.heads`
      expect([Number(row!.seq), Number(row!.stamp)]).toEqual([2, 1])
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await old.drop()
    }
  })
})

describe('relay.publish_many', () => {
  it('publishes in array order as consecutive seqs after what the tenant had, and returns the last', async () => {
    await db.sql`select relay.publish('many', 'x', '{"n":0}')`
    const [{ seq }] = (await db.sql`
      select relay.publish_many('many', 'orders', array['{"n":1}', '"two"', '3', 'null']::jsonb[]) as seq`) as unknown as [{ seq: string }]
    expect(Number(seq)).toBe(5)
    await db.sql`select relay.publish('many', 'x', '{"n":6}')`
    expect(await events('many')).toEqual([
      [1, 'x', '{"n": 0}'],
      [2, 'orders', '{"n": 1}'],
      [3, 'orders', '"two"'],
      [4, 'orders', '3'],
      [5, 'orders', 'null'],
      [6, 'x', '{"n": 6}'],
    ])
  })

  it('nudges once per call (and not at all with relay.notify = off)', async () => {
    const nudges = await nudgesDuring(() => db.sql`select relay.publish_many('many-n', 't', array['1', '2', '3']::jsonb[])`)
    expect(nudges).toEqual(['many-n'])
    const quiet = await nudgesDuring(() =>
      db.sql.begin(async (tx) => {
        await tx`select set_config('relay.notify', 'off', true)`
        await tx`select relay.publish_many('many-n', 't', array['4', '5']::jsonb[])`
      }),
    )
    expect(quiet).toEqual([])
    expect((await head('many-n'))!.seq).toBe(5)
  })

  it('refuses the call, with nothing written, when any element is bad', async () => {
    await db.sql`select relay.publish('many-bad', 't', '1')`
    const before = await head('many-bad')
    const big = JSON.stringify('x'.repeat(70_000))
    const refusals: [() => Promise<unknown>, RegExp, string][] = [
      [
        () => db.sql`select relay.publish_many('many-bad', 't', array['1', null, '3']::jsonb[])`,
        /data\[2\] must be a JSON value, not SQL NULL/,
        '22004',
      ],
      [
        () => db.sql`select relay.publish_many('many-bad', 't', array['1', ${big}]::jsonb[])`,
        /event data\[2\] is \d+ bytes, over the limit of 65536 bytes/,
        '54000',
      ],
      [() => db.sql`select relay.publish_many('many-bad', 't', null)`, /not SQL NULL/, '22004'],
      [() => db.sql`select relay.publish_many('many-bad', 't', '{{1,2},{3,4}}'::jsonb[])`, /one-dimensional/, '22023'],
      [() => db.sql`select relay.publish_many('bad tenant!', 't', array['1']::jsonb[])`, /relay.publish_many: invalid tenant/, '22023'],
      [() => db.sql`select relay.publish_many('many-bad', 'bad topic', array['1']::jsonb[])`, /relay.publish_many: invalid topic/, '22023'],
    ]
    for (const [call, message, code] of refusals) {
      const err = await call().catch((e: unknown) => e)
      expect(err, String(message)).toMatchObject({ code })
      expect((err as Error).message).toMatch(message)
    }
    expect(await head('many-bad')).toEqual(before)
    expect(await events('many-bad')).toEqual([[1, 't', '1']])
  })

  it('an empty array publishes nothing, returns NULL, takes no seq and sends no nudge', async () => {
    let result: unknown
    const nudges = await nudgesDuring(async () => {
      ;[{ seq: result }] = (await db.sql`select relay.publish_many('many-empty', 't', '{}') as seq`) as unknown as [{ seq: unknown }]
    })
    expect(result).toBeNull()
    expect(nudges).toEqual([])
    expect(await head('many-empty')).toBeUndefined()
  })

  it('relay.publish keeps its checks and messages', async () => {
    await expect(db.sql`select relay.publish('ok', 't', null)`).rejects.toMatchObject({
      message: 'relay.publish: data must be a JSON value, not SQL NULL',
    })
    await expect(db.sql`select relay.publish('bad tenant!', 't', '1')`).rejects.toMatchObject({
      message: "relay.publish: invalid tenant 'bad tenant!'",
    })
  })
})
