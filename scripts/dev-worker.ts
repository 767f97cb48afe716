/**
 * `npm run dev:worker`: the Cloudflare flavour on one machine. The edge runs under `wrangler dev` (local workerd
 * with real Durable Object rooms, no Cloudflare login, no metrics), and the relay runs here against it. With no
 * DATABASE_URL, the embedded PostgreSQL under .data/ starts as for `npm start`. Ctrl-C stops everything.
 * Variables: the relay's and the Worker's (docs/configuration.md; the Worker's set here are passed to it as vars,
 * development values are generated for EDGE_JWT_SECRET and RELAY_SECRET when not set), and WRANGLER_PERSIST_TO
 * (Durable Object storage; default .data/wrangler next to the embedded database, else .wrangler/state).
 */
import { resolve } from 'node:path'
import { loadWorkersEnv, workersVariables } from '../edge/config.ts'
import { loadRelayConfig } from '../relay/config.ts'
import { startRelayService } from '../relay/service.ts'
import { startFailureLines } from '../shared/env.ts'
import { log, setLogLevel } from '../shared/log.ts'
import { devEnv, devSecretSource, lifecycle, mintDevToken, mintHint, prepareDatabase, say } from './dev-common.ts'
import { startWranglerDev } from './wrangler-dev.ts'

const env = devEnv()
const { onStop, stopAll } = lifecycle()

try {
  // The Worker's variables, checked here so that a bad one is named before wrangler starts.
  const workerSettings = loadWorkersEnv(env)
  const workerVars = Object.fromEntries(Object.keys(workersVariables).flatMap((k) => (env[k] ? [[k, env[k]]] : [])))
  const { embedded } = await prepareDatabase(env, onStop)

  // Rooms remember their head: their storage must live and die with the database it mirrors, or a fresh database's
  // seq 1 would be taken for a duplicate. With the embedded database, both live under .data/.
  const persistTo = env.WRANGLER_PERSIST_TO ?? (embedded ? resolve('.data/wrangler') : undefined)
  say(`starting the Worker under wrangler dev (local workerd; room storage in ${persistTo ?? '.wrangler/state'})…`)
  const worker = await startWranglerDev({
    port: workerSettings.PORT,
    ...(persistTo ? { persistTo } : {}),
    vars: workerVars,
    onOutput: (line) => say(`[wrangler] ${line}`),
  })
  onStop(() => worker.stop())
  env.EDGE_URL = worker.url

  // The relay posts to the Worker over signed HTTP, as `npm run relay` does.
  const relayConfig = loadRelayConfig(env)
  setLogLevel(relayConfig.LOG_LEVEL)
  const relay = await startRelayService({ config: relayConfig, log })
  onStop(() => relay.stop())
  const relayUrl = relay.url

  const tenant = 'demo'
  const token = await mintDevToken(env.EDGE_JWT_SECRET, tenant)
  say(`
edge-relay is running on the Workers runtime (wrangler dev).

  edge (Worker) ${worker.url}   (health: ${worker.url}/healthz)
  relay         ${relayUrl}/healthz
  DATABASE_URL  ${env.DATABASE_URL}
  dev token     ${token}
                (tenant "${tenant}", every topic, valid 24 h, signed with ${devSecretSource()})
  mint another  ${mintHint(tenant)}

Watch the stream:
  curl -N '${worker.url}/v1/tenants/${tenant}/events?access_token=${token}'

Publish (in another terminal):
  psql '${env.DATABASE_URL}' -c "select relay.publish('${tenant}', 'greetings', '{\\"hello\\": \\"world\\"}')"

Ctrl-C stops everything.`)
} catch (err) {
  for (const line of startFailureLines(err)) console.error(`npm run dev:worker failed: ${line}`)
  await stopAll(1)
}
