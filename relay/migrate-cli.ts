import { pathToFileURL } from 'node:url'
import postgres from 'postgres'
import { migrate } from './migrate.ts'

/** `npm run migrate`, `edge-relay migrate`: applies the migrations to DATABASE_URL; returns the exit code. */
export const runMigrate = async (): Promise<number> => {
  const url = process.env.DATABASE_URL
  if (!url) {
    console.error('DATABASE_URL is required, e.g. DATABASE_URL=postgres://user@127.0.0.1:5432/app edge-relay migrate')
    return 2
  }
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    const applied = await migrate(sql)
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
    return 0
  } catch (err) {
    console.error(`migration failed: ${(err as Error).message}`)
    return 1
  } finally {
    await sql.end()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await runMigrate()
