import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../../relay/migrate.ts'
import { startEmbeddedPostgres } from '../../scripts/embedded.ts'

/**
 * The bench database: a fresh one on DATABASE_URL's server (created here, dropped at the end), or, with no
 * DATABASE_URL, on an embedded PostgreSQL started for the run in a temporary directory.
 */
export const benchDatabase = async (progress: (msg: string) => void) => {
  let serverUrl = process.env.DATABASE_URL
  let stopEmbedded = async () => {}
  if (!serverUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'edge-relay-bench-pg-'))
    const pg = await startEmbeddedPostgres({ dir, port: 0, onProgress: progress })
    serverUrl = pg.url
    stopEmbedded = async () => {
      await pg.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  const name = `edge_relay_bench_${process.pid}`
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`drop database if exists "${name}" with (force)`)
  await admin.unsafe(`create database "${name}"`)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} })
  await migrate(sql)
  // The baseline's own log table (Logtide stores the row, then NOTIFYs it).
  await sql`create table bench_log (id bigserial primary key, tenant text not null, topic text not null, data jsonb not null, created_at timestamptz not null default clock_timestamp())`
  const [v] = await sql<{ server_version: string }[]>`show server_version`
  return {
    url: url.toString(),
    sql,
    version: v!.server_version,
    embedded: !process.env.DATABASE_URL,
    /** Empties the outbox between runs so a new edge is not first refilled with old history. */
    reset: () => sql`truncate relay.events, relay.heads, relay.cursors, bench_log`,
    async drop() {
      await sql.end({ timeout: 1 })
      await admin.unsafe(`drop database if exists "${name}" with (force)`)
      await admin.end({ timeout: 1 })
      await stopEmbedded()
    },
  }
}

export type BenchDb = Awaited<ReturnType<typeof benchDatabase>>
