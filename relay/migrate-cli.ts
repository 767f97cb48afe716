import { isMain } from '../shared/node/process.ts'
import postgres from 'postgres'
import { migrate } from './migrate.ts'

/** `npm run migrate`, `edge-relay migrate`: applies the migrations to DATABASE_URL; returns the exit code. */
export const runMigrate = async (): Promise<number> => {
  const url = process.env.DATABASE_URL
  if (!url) {
    console.error('DATABASE_URL is required, e.g. DATABASE_URL=postgres://user@127.0.0.1:5432/app edge-relay migrate')
    return 2
  }
  try {
    const applied = await migrateUrl(url)
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
    return 0
  } catch (err) {
    console.error(`migration failed: ${(err as Error).message}`)
    return 1
  }
}

/** Applies the migrations to the database at `url` on a connection of its own; returns the names applied now. */
export const migrateUrl = async (url: string): Promise<string[]> => {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    return await migrate(sql)
  } finally {
    await sql.end()
  }
}

if (isMain(import.meta.url)) process.exitCode = await runMigrate()
