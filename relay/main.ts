import { log, setLogLevel } from '../shared/log.ts'
import { loadRelayConfig } from './config.ts'
import { runRelayProcess } from './process.ts'
import { startRelay } from './relay.ts'
import { startRelayServer } from './health-server.ts'

/**
 * `npm run relay`: the relay, posting signed batches to the edges in EDGE_URL, and its /healthz + /metrics port.
 * It knows the edges only by the wire; a process that also serves a Node edge is composed above both (cli/serve.ts).
 */
const startRelayOnly = async () => {
  const config = loadRelayConfig(process.env)
  setLogLevel(config.LOG_LEVEL)
  const relay = await startRelay({ config, log })
  const server = await startRelayServer(relay, config.RELAY_PORT, config.RELAY_HOST)
  log('info', 'relay started', { edges: config.EDGE_URL, port: server.port })
  return {
    async stop() {
      await relay.stop() // finishes the batches in flight
      await server.close()
    },
  }
}

runRelayProcess(startRelayOnly)
