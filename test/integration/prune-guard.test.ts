import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate, MIGRATIONS_DIR } from '../../relay/migrate.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'

/** relay.prune's keep_count guard (migrations/0003_prune_guard.sql), on real PostgreSQL. */
let db: TestDb
beforeAll(async () => {
  db = await freshDatabase()
  for (let i = 0; i < 5; i++) await db.sql`select relay.publish('pg', 'x', ${db.sql.json({ i })})`
  await db.sql`insert into relay.cursors (edge, tenant, delivered) values ('e', 'pg', 5)`
})
afterAll(() => db?.drop())

const remaining = async () => Number((await db.sql<{ n: string }[]>`select count(*) as n from relay.events where tenant = 'pg'`)[0]!.n)

describe('relay.prune', () => {
  it('refuses a negative keep_count with a clear SQL error, and deletes nothing', async () => {
    const err = await db.sql`select relay.prune(array['e'], null, -1)`.then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string; hint?: string },
    )
    expect(err).toMatchObject({ code: '22023', hint: 'pass null to prune by age only' })
    expect(err?.message).toMatch(/^relay\.prune: keep_count must be zero or more \(got -1\)/)
    expect(await remaining()).toBe(5)
    // With an age limit too: refused before anything is read.
    await expect(db.sql`select relay.prune(array['e'], interval '0 seconds', -3)`).rejects.toMatchObject({ code: '22023' })
    expect(await remaining()).toBe(5)
  })

  it('still prunes with zero or more, and with null (age only)', async () => {
    expect(await db.sql`select relay.prune(array['e'], null, null) as n`).toEqual([{ n: '0' }])
    expect(await db.sql`select relay.prune(array['e'], null, 2) as n`).toEqual([{ n: '3' }])
    expect(await db.sql`select relay.prune(array['e'], null, 0) as n`).toEqual([{ n: '2' }])
    expect(await remaining()).toBe(0)
  })

  it('is applied by migrate after 0002, and running it again changes nothing', async () => {
    const names = (await db.sql<{ name: string }[]>`select name from relay.migrations order by name`).map((r) => r.name)
    expect(names.indexOf('0003_prune_guard.sql')).toBeGreaterThan(names.indexOf('0002_retention.sql'))
    expect(await migrate(db.sql)).toEqual([])
    await db.sql.unsafe(await readFile(join(MIGRATIONS_DIR, '0003_prune_guard.sql'), 'utf8'))
    await expect(db.sql`select relay.prune(array['e'], null, -1)`).rejects.toMatchObject({ code: '22023' })
  })
})
