import { loadRelayConfig } from '../../relay/config.ts'
import { startRelay } from '../../relay/relay.ts'
import { quietLog as quiet, serveChild } from '../lib/child.ts'

/**
 * Our relay in its own process (env: DATABASE_URL, EDGE_URL, RELAY_SECRET). `posts`: the publish POSTs answered so
 * far and their round trips added up (s), from its Prometheus histogram: the room's answer time, seen from the relay.
 */
const relay = await startRelay({ config: loadRelayConfig(process.env), log: quiet })
serveChild(
  {
    posts: async () => {
      const values = (await relay.metrics.postSeconds.get()).values.filter((v) => v.labels.outcome === 'ok')
      const of = (suffix: string) => values.filter((v) => v.metricName?.endsWith(suffix)).reduce((n, v) => n + v.value, 0)
      return { count: of('_count'), seconds: of('_sum') }
    },
  },
  () => relay.stop(),
).ready({})
