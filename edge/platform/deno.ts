/**
 * The edge on Deno: the same Hono app as on Workers and Node, with in-memory rooms. `deno task edge`.
 * Env as for `npm run edge`: PORT (0 = a free port), HOST, EDGE_JWT_SECRET (or EDGE_JWKS_URL / EDGE_JWT_PUBLIC_KEY),
 * RELAY_SECRET, HISTORY_LIMIT, HEARTBEAT_MS and the EDGE_* limits.
 */
import { createApp } from '../app.ts'
import { createAuth } from '../auth.ts'
import { authOptions, edgeConfig, loadEdgeEnv, memoryRoomsSettings } from '../config.ts'
import { memoryRooms } from '../room/rooms.ts'
import { log } from '../../shared/log.ts'

let env
try {
  env = loadEdgeEnv(Deno.env.toObject())
} catch (err) {
  log('error', 'edge failed to start', { err: err instanceof Error ? err.message : String(err) })
  Deno.exit(1)
}
const rooms = memoryRooms({ ...memoryRoomsSettings(env), log })
const app = createApp({
  rooms,
  auth: createAuth(authOptions(env)),
  config: edgeConfig(env),
  log,
})

const server = Deno.serve(
  {
    port: env.PORT,
    hostname: Deno.env.get('HOST') ?? '0.0.0.0',
    // One line on stdout with the URL, so scripts and tests can find a port chosen by the kernel.
    onListen: ({ hostname, port }) => console.log(JSON.stringify({ level: 'info', msg: 'edge listening', url: `http://${hostname}:${port}` })),
  },
  app.fetch,
)

const stop = async (signal: string) => {
  log('info', 'edge stopping', { signal })
  rooms.close() // ends every SSE stream so the server can finish
  await server.shutdown()
  Deno.exit(0)
}
Deno.addSignalListener('SIGINT', () => void stop('SIGINT'))
Deno.addSignalListener('SIGTERM', () => void stop('SIGTERM'))
