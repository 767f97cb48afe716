import { log, setLogLevel } from '../shared/log.ts'
import { loadRelayConfig } from './config.ts'
import { runProcess } from '../shared/node/process.ts'
import { startRelayService } from './service.ts'

/**
 * `npm run relay`: the relay, posting signed batches to the edges in EDGE_URL, and its /healthz + /metrics port.
 * It knows the edges only by the wire; a process that also serves a Node edge is composed above both (cli/serve.ts).
 */
runProcess('relay', async () => {
  const config = loadRelayConfig(process.env)
  setLogLevel(config.LOG_LEVEL)
  const service = await startRelayService({ config, log })
  log('info', 'relay started', { edges: config.EDGE_URL, port: service.relayServer.port })
  return service
})
