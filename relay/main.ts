import { log } from '../shared/log.ts'
import { loadRelayConfig } from './config.ts'
import { startRelay } from './relay.ts'
import { startRelayServer } from './server.ts'

/** `npm run relay`: wiring and signals. The only relay file that reads process.*. */
const main = async () => {
  const config = loadRelayConfig(process.env)
  const relay = await startRelay({ config, log })
  const server = await startRelayServer(relay, config.RELAY_PORT, config.RELAY_HOST)
  log('info', 'relay started', { edges: config.EDGE_URL, port: server.port })
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    log('info', 'relay stopping', { signal })
    await relay.stop()
    await server.close()
    log('info', 'relay stopped')
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

main().catch((err) => {
  log('error', 'relay failed', { err: err instanceof Error ? err.message : String(err) })
  process.exit(1)
})
