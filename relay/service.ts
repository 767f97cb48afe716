import { startRelayServer } from './health-server.ts'
import { startRelay, type RelayOptions } from './relay.ts'

/**
 * A relay with its /healthz and /metrics port (`npm run relay`, `serve`, `dev:worker`). `stop` finishes the batches in
 * flight (into a local edge too), then closes the port; a port that cannot be bound stops the relay, then throws.
 */
export const startRelayService = async (options: RelayOptions) => {
  const { config } = options
  const relay = await startRelay(options)
  const relayServer = await startRelayServer(relay, config.RELAY_PORT, config.RELAY_HOST).catch(async (err: unknown) => {
    await relay.stop()
    throw err
  })
  return {
    relay,
    relayServer,
    /** Where /healthz and /metrics answer. */
    url: `http://${config.RELAY_HOST}:${relayServer.port}`,
    async stop() {
      await relay.stop()
      await relayServer.close()
    },
  }
}
