import { startRelayServer } from './health-server.ts'
import { startRelay, type Relay, type RelayOptions } from './relay.ts'

/**
 * A relay with its /healthz and /metrics port (`npm run relay`, `serve`, `dev:worker`). The port is bound first, so
 * a port in use (PortInUseError, naming RELAY_PORT) costs no connection and no election; /healthz answers 503 until
 * the relay has started. `stop` finishes the batches in flight (into a local edge too), then closes the port.
 */
export const startRelayService = async (options: RelayOptions) => {
  const { config } = options
  let started: Relay | undefined
  const relayServer = await startRelayServer(
    {
      health: () => started?.health() ?? { ok: false, starting: true },
      get metrics() {
        return started?.metrics ?? { registry: { contentType: 'text/plain; version=0.0.4', metrics: async () => '' } }
      },
    },
    config.RELAY_PORT,
    config.RELAY_HOST,
  )
  const relay = await startRelay(options).catch(async (err: unknown) => {
    await relayServer.close()
    throw err
  })
  started = relay
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
