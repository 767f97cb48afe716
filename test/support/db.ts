import postgres, { type Sql } from 'postgres'
import { inject } from 'vitest'
import { migrate } from '../../relay/migrate.ts'

/** The server URL the run uses (DATABASE_URL or the embedded one), with `database` swapped in. */
export const databaseUrl = (database?: string) => {
  const url = new URL(inject('databaseUrl'))
  if (database) url.pathname = `/${database}`
  return url.toString()
}

/**
 * A fresh, migrated database for one test file: tests in parallel never see each other's tenants, cursors or
 * NOTIFYs (LISTEN/NOTIFY is per database). Dropped by `drop()`.
 */
export const freshDatabase = async (prefix = 'er_test') => {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"`)
  const url = databaseUrl(name)
  const sql: Sql = postgres(url, { max: 8, onnotice: () => {} })
  await migrate(sql)
  return {
    name,
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 1 })
      await admin.unsafe(`drop database if exists "${name}" with (force)`)
      await admin.end()
    },
  }
}

export type TestDb = Awaited<ReturnType<typeof freshDatabase>>
