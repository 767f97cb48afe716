import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Sql } from 'postgres'

/** migrations/ at the package's root: next to relay/ in a checkout, two levels up from the built dist/relay/. */
export const MIGRATIONS_DIR = ['../migrations/', '../../migrations/']
  .map((dir) => fileURLToPath(new URL(dir, import.meta.url)))
  .find((dir) => existsSync(dir))!

/** Any 64-bit number, fixed: serialises concurrent migrators. */
const MIGRATE_LOCK = 0x72656c6179_01n

/**
 * Applies `migrations/*.sql` in name order, each in its own transaction, recording applied files in
 * relay.migrations. Running it again applies nothing. Returns the names applied now.
 */
export const migrate = async (sql: Sql, dir = MIGRATIONS_DIR): Promise<string[]> => {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort()
  const applied: string[] = []
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATE_LOCK.toString()}::bigint)`
    await tx`create schema if not exists relay`
    await tx`create table if not exists relay.migrations (name text primary key, applied_at timestamptz not null default now())`
    const done = new Set((await tx<{ name: string }[]>`select name from relay.migrations`).map((r) => r.name))
    for (const file of files) {
      if (done.has(file)) continue
      await tx.unsafe(await readFile(join(dir, file), 'utf8'))
      await tx`insert into relay.migrations (name) values (${file})`
      applied.push(file)
    }
  })
  return applied
}
