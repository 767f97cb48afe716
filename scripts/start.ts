/**
 * `npm start`: everything on one machine for development. With no DATABASE_URL, an embedded PostgreSQL under
 * .data/ (real binaries from npm); then migrations, the Node edge and the relay, in this process. Ctrl-C stops all.
 * Accepts the same variables as `npm run relay` / `npm run edge`; development secrets are generated for those unset.
 */
import postgres from 'postgres'
import { loadServeConfig, startServe } from '../cli/compose.ts'
import { createAuth } from '../edge/auth.ts'
import { startFailureLines } from '../shared/env.ts'
import { log, setLogLevel } from '../shared/log.ts'
import { devEnv, devSecretSource, lifecycle, mintDevToken, mintHint, prepareDatabase, say } from './dev-common.ts'
import { devRoutes } from './dev-routes.ts'

const env = devEnv()
// On a development machine the edge answers this machine only, unless HOST says otherwise.
env.HOST ??= '127.0.0.1'
const { onStop, stopAll } = lifecycle()

try {
  const db = await prepareDatabase(env, onStop)
  const config = loadServeConfig(env)
  setLogLevel(config.relay.LOG_LEVEL)
  // The live-tail page and its publish form: development only, never part of `npm run edge`.
  const devSql = postgres(db.url, { max: 2, onnotice: () => {} })
  onStop(() => devSql.end({ timeout: 1 }))
  let served: Awaited<ReturnType<typeof startServe>> | undefined
  const extend = devRoutes({
    auth: createAuth(config.edge),
    sql: devSql,
    maxEventBytes: config.edge.EDGE_MAX_EVENT_BYTES,
    relayRole: () => served?.relay.health().role,
  })
  // What `npm run serve` runs: the relay delivers to this edge by a function call, and to EDGE_URL's edges if set.
  served = await startServe({ config, log, edge: { extend } })
  onStop(() => served.stop())
  const { edge } = served
  const { relayUrl } = served

  // Another relay already leads this database (a second `npm start` or a `serve` sharing DATABASE_URL): this one
  // waits as a standby and its edge gets nothing until it leads (relay/relay.ts says why it does not deliver).
  const standby = served.relay.health().role === 'standby'
  const tenant = 'demo'
  const token = await mintDevToken(env.EDGE_JWT_SECRET, tenant)
  const stream = `${edge.url}/v1/tenants/${tenant}/events`
  say(`
edge-relay is running. Open the live tail:

  ${edge.url}/?tenant=${tenant}#token=${token}

  edge          ${edge.url}   (health: ${edge.url}/healthz)
  relay         ${relayUrl}/healthz   (metrics: /metrics on both)
  DATABASE_URL  ${env.DATABASE_URL}
  dev token     ${token}
                (tenant "${tenant}", every topic, valid 24 h, signed with ${devSecretSource()})
  mint another  ${mintHint(tenant)}

Watch the stream:
  curl -N '${stream}?access_token=${token}'

Tail it from a terminal:
  npx edge-relay tail ${tenant} --url ${edge.url} --token ${token}

Publish (in another terminal):
  psql '${env.DATABASE_URL}' -c "select relay.publish('${tenant}', 'greetings', '{\\"hello\\": \\"world\\"}')"

Ctrl-C stops everything.`)
  if (standby)
    say(`
WARNING: another relay leads this database (${env.DATABASE_URL}).
  This one is a standby: its page and streams get events only once it leads (when that relay stops).
  Use the page of the \`npm start\` or \`npm run serve\` that leads, stop it, or leave DATABASE_URL unset
  to run on this directory's own embedded database.`)
} catch (err) {
  for (const line of startFailureLines(err)) console.error(`npm start failed: ${line}`)
  await stopAll(1)
}
