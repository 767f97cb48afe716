import postgres from 'postgres'
import { migrate } from './migrate.ts'

const url = process.env.DATABASE_URL
if (!url) {
  console.error('DATABASE_URL is required, e.g. DATABASE_URL=postgres://user@127.0.0.1:5432/app npm run migrate')
  process.exit(2)
}
const sql = postgres(url, { max: 1, onnotice: () => {} })
try {
  const applied = await migrate(sql)
  console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
} catch (err) {
  console.error(`migration failed: ${(err as Error).message}`)
  process.exitCode = 1
} finally {
  await sql.end()
}
