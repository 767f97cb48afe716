import { loadRelayConfig } from '../../relay/config.ts'
import { startRelay } from '../../relay/relay.ts'
import { quietLog as quiet, serveChild } from '../lib/child.ts'

/** Our relay in its own process (env: DATABASE_URL, EDGE_URL, RELAY_SECRET). */
const relay = await startRelay({ config: loadRelayConfig(process.env), log: quiet })
serveChild({}, () => relay.stop()).ready({})
