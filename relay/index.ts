/** `edge-relay/relay`: the relay, to embed in a Node process of your own (or run `edge-relay relay`). */
export { loadRelayConfig, type RelayConfig } from './config.ts'
export { migrate } from './migrate.ts'
export { startRelay, type Relay, type LocalEdge, type RelayOptions } from './relay.ts'
export { startRelayService } from './service.ts'
