import postgres, { type Notice, type Sql } from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshDatabase, type TestDb } from '../support/db.ts'

/**
 * relay.watch() against real PostgreSQL (migrations/0006_watch_keys.sql): which key each event names, what it
 * refuses, relay.unwatch(), and that neither says a NOTICE.
 */
let db: TestDb
let sql: Sql
const notices: Notice[] = []
beforeAll(async () => {
  db = await freshDatabase()
  sql = postgres(db.url, { max: 1, onnotice: (n) => void notices.push(n) })
})
afterAll(async () => {
  await sql?.end({ timeout: 1 })
  await db?.drop()
})

/** The data of the events of `tenant`, in seq order, as PostgreSQL stores it. */
const events = async (tenant: string) =>
  (await sql<{ topic: string; data: unknown }[]>`select topic, data from relay.events where tenant = ${tenant} order by seq`).map(
    (e) => e.data,
  )

describe('relay.watch', () => {
  it('a table keyed by id: {op, id}, as before (what existing watchers receive does not change)', async () => {
    await sql`create table w_orders (id bigint primary key, org text not null, status text)`
    await sql`select relay.watch('w_orders', 'org', 'orders')`
    await sql`insert into w_orders values (42, 'w1', 'new')`
    await sql`update w_orders set status = 'paid' where id = 42`
    await sql`delete from w_orders where id = 42`
    expect(await events('w1')).toEqual([
      { op: 'INSERT', id: 42 },
      { op: 'UPDATE', id: 42 },
      { op: 'DELETE', id: 42 },
    ])
  })

  it('a table with another primary key: {op, key} with every key column, in key order', async () => {
    await sql`create table w_stock (org text not null, sku text, site int, qty int, primary key (sku, site))`
    await sql`select relay.watch('w_stock', 'org', 'stock')`
    await sql`insert into w_stock values ('w2', 'A-1', 7, 3)`
    await sql`delete from w_stock`
    expect(await events('w2')).toEqual([
      { op: 'INSERT', key: { sku: 'A-1', site: 7 } },
      { op: 'DELETE', key: { sku: 'A-1', site: 7 } },
    ])
  })

  it('names the key columns when asked, instead of the primary key', async () => {
    await sql`create table w_users (id int primary key, org text, email text)`
    await sql`select relay.watch('w_users', 'org', 'users', array['email'])`
    await sql`insert into w_users values (1, 'w3', 'ada@example.com')`
    expect(await events('w3')).toEqual([{ op: 'INSERT', key: { email: 'ada@example.com' } }])
  })

  it('refuses a table with neither a primary key nor key columns, saying what to pass; no id column means no {"id": null}', async () => {
    await sql`create table w_log (org text, line text)`
    const refused = await sql`select relay.watch('w_log', 'org', 'log')`.catch((e: postgres.PostgresError) => e)
    expect(refused).toBeInstanceOf(Error)
    expect((refused as postgres.PostgresError).message).toBe(
      'relay.watch: w_log has no primary key and no id column, so its events could not say which row changed',
    )
    expect((refused as postgres.PostgresError).hint).toBe(
      "Name the column(s) that identify a row: select relay.watch('w_log', 'org', 'log', array['sku']);",
    )
    await expect(sql`select relay.watch('w_log', 'org', 'log', array['nope'])`).rejects.toThrow(
      'relay.watch: w_log has no column nope (in key_columns)',
    )
    await expect(sql`select relay.watch('w_log', 'org', 'log', array[]::text[])`).rejects.toThrow(
      'relay.watch: key_columns must name at least one column',
    )
    // Nothing was installed by the refusals.
    await sql`insert into w_log values ('w4', 'x')`
    expect(await events('w4')).toEqual([])
    await sql`select relay.watch('w_log', 'org', 'log', array['line'])`
    await sql`insert into w_log values ('w4', 'y')`
    expect(await events('w4')).toEqual([{ op: 'INSERT', key: { line: 'y' } }])
  })

  it('a table without a primary key but with an id column is keyed by id (what watch() read before)', async () => {
    await sql`create table w_legacy (id int, org text)`
    await sql`select relay.watch('w_legacy', 'org', 'legacy')`
    await sql`insert into w_legacy values (5, 'w5')`
    expect(await events('w5')).toEqual([{ op: 'INSERT', id: 5 }])
  })

  it('relay.unwatch stops it; watching again replaces the trigger (one event per change, not two)', async () => {
    await sql`create table w_again (id int primary key, org text)`
    await sql`select relay.watch('w_again', 'org', 'first')`
    await sql`select relay.watch('w_again', 'org', 'second')`
    await sql`insert into w_again values (1, 'w6')`
    await sql`select relay.unwatch('w_again')`
    await sql`select relay.unwatch('w_again')` // not watched: nothing to do, nothing said
    await sql`insert into w_again values (2, 'w6')`
    expect(await sql`select topic, data from relay.events where tenant = 'w6'`).toEqual([
      { topic: 'second', data: { op: 'INSERT', id: 1 } },
    ])
  })

  it('says no NOTICE on a first watch, a re-watch or an unwatch', async () => {
    expect(notices.map((n) => n.message)).toEqual([])
    await sql`drop table if exists w_absent` // the kind of line watch() used to say: proves notices are heard here
    expect(notices.map((n) => n.message)).toEqual(['table "w_absent" does not exist, skipping'])
  })
})
