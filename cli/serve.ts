/**
 * `npm run serve`: the relay and the Node edge in one process — the single-VM deployment on Node, and the fastest
 * self-hosted one (see compose.ts). The same variables as `npm run relay` and `npm run edge` together; EDGE_URL is
 * optional and lists further edges; HOST is the edge's address (default 0.0.0.0). Lives and dies as any relay
 * process does (shared/node/process.ts): exit 70 on a crash, 1 on a failed start, 0 after SIGINT/SIGTERM.
 */
import { runProcess } from '../shared/node/process.ts'
import { log, setLogLevel } from '../shared/log.ts'
import { loadServeConfig, startServe } from './compose.ts'

runProcess('relay', async () => {
  const config = loadServeConfig(process.env)
  setLogLevel(config.relay.LOG_LEVEL)
  const served = await startServe({ config, log })
  log('info', 'relay started', { edges: config.relay.EDGE_URL, edge: served.edge.url, port: served.relayServer.port })
  return served
})
