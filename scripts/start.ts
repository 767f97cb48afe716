/**
 * `npm start`: everything on one machine for development. With no DATABASE_URL, an embedded PostgreSQL under
 * .data/ (real binaries from npm); then migrations, the Node edge and the relay, in this process. Ctrl-C stops all.
 * Accepts the same variables as `npm run relay` / `npm run edge`; development secrets are generated for those unset.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import postgres from 'postgres'
import { SignJWT } from 'jose'
import { createAuth } from '../edge/auth.ts'
import { authOptions, loadEdgeEnv } from '../edge/config.ts'
import { startNodeEdge } from '../edge/platform/node.ts'
import { loadRelayConfig } from '../relay/config.ts'
import { migrate } from '../relay/migrate.ts'
import { startRelay } from '../relay/relay.ts'
import { startRelayServer } from '../relay/server.ts'
import { log } from '../shared/log.ts'
import { devRoutes } from './dev-routes.ts'
import { startEmbeddedPostgres } from './embedded.ts'

const say = (msg: string) => console.log(msg)
const env = { ...process.env }
const devSecret = () => randomBytes(24).toString('base64url')
env.EDGE_JWT_SECRET ??= devSecret()
env.RELAY_SECRET ??= devSecret()
env.PORT ??= '8787'

const cleanups: (() => Promise<unknown>)[] = []
let stopping = false
const stopAll = async (code: number) => {
  if (stopping) return
  stopping = true
  say('\nstopping…')
  for (const fn of cleanups.reverse()) await fn().catch((err) => log('warn', 'cleanup failed', { err: String(err) }))
  process.exit(code)
}
process.once('SIGINT', () => void stopAll(0))
process.once('SIGTERM', () => void stopAll(0))

try {
  if (!env.DATABASE_URL) {
    const dir = resolve('.data/pg')
    mkdirSync(dir, { recursive: true })
    const pg = await startEmbeddedPostgres({ dir, port: Number(env.EMBEDDED_PG_PORT ?? 0), onProgress: say })
    cleanups.push(() => pg.stop())
    env.DATABASE_URL = pg.url
  }
  const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} })
  const applied = await migrate(sql)
  await sql.end()
  say(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date')

  const edgeEnv = loadEdgeEnv(env)
  // The live-tail page and its publish form: development only, never part of `npm run edge`.
  const devSql = postgres(env.DATABASE_URL, { max: 2, onnotice: () => {} })
  cleanups.push(() => devSql.end({ timeout: 1 }))
  const extend = devRoutes({ auth: createAuth(authOptions(edgeEnv)), sql: devSql })
  const edge = await startNodeEdge(edgeEnv, env.HOST ?? '127.0.0.1', { extend })
  cleanups.push(() => edge.close())
  env.EDGE_URL ??= edge.url

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
    .sign(new TextEncoder().encode(edgeEnv.EDGE_JWT_SECRET))
  const stream = `${edge.url}/v1/tenants/${tenant}/events`
  say(`
edge-relay is running. Open the live tail:

  ${edge.url}/?tenant=${tenant}#token=${token}

  edge          ${edge.url}   (health: ${edge.url}/healthz)
  relay         http://${config.RELAY_HOST}:${server.port}/healthz   (metrics: /metrics on both)
  DATABASE_URL  ${env.DATABASE_URL}
  dev token     ${token}
                (tenant "${tenant}", valid 24 h, signed with this run's EDGE_JWT_SECRET)

Watch the stream:
  curl -N '${stream}?access_token=${token}'

Tail it from a terminal:
  npx edge-relay tail ${tenant} --url ${edge.url} --token ${token}

Publish (in another terminal):
  psql '${env.DATABASE_URL}' -c "select relay.publish('${tenant}', 'greetings', '{\\"hello\\": \\"world\\"}')"

Ctrl-C stops everything.`)
} catch (err) {
  console.error(`npm start failed: ${err instanceof Error ? err.message : String(err)}`)
  await stopAll(1)
}
