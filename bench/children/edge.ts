import { loadServeConfig, startServe } from '../../cli/compose.ts'
import { loadEdgeEnv } from '../../edge/config.ts'
import { startNodeEdge } from '../../edge/platform/node.ts'
import { observeFlushes } from '../../edge/platform/node-sse.ts'
import { quietLog as quiet, serveChild } from '../lib/child.ts'
import { newHist, nowMs, record, stampOf } from '../lib/hist.ts'
import { memory } from '../lib/memory.ts'

/**
 * Our Node edge in its own process (env: EDGE_JWT_SECRET, RELAY_SECRET).
 * With BENCH_WITH_RELAY=1 (and DATABASE_URL), the relay runs in this process too and delivers to the edge by a
 * function call: `npm run serve`'s composition, the single-process deployment on Node.
 */
const env = { ...process.env, PORT: '0' }
const served =
  process.env.BENCH_WITH_RELAY === '1'
    ? // The relay's /healthz port on any free port: a fixed one could clash with a relay child of the same run.
      await startServe({ config: loadServeConfig({ RELAY_PORT: '0', ...env }), log: quiet, host: '127.0.0.1' })
    : undefined
const edge = served?.edge ?? (await startNodeEdge(loadEdgeEnv(env), '127.0.0.1'))

// Where the time goes: commit → the relay's batch reaching the room (the rest is edge → client), and how long the
// edge takes to write one flush to 100 or more subscribers (the fan-out span of a hot event).
let arrival = newHist()
let fanout = newHist()
observeFlushes((subscribers, ms) => subscribers >= 100 && record(fanout, ms))
const get = edge.rooms.get
edge.rooms.get = (tenant) => {
  const stub = get(tenant)
  return {
    ...stub,
    publish: (body) => {
      const now = nowMs()
      for (const e of body.events) {
        const t = stampOf(e.data)
        if (t !== undefined) record(arrival, now - t)
      }
      return stub.publish(body)
    },
  }
}

serveChild(
  {
    memory,
    arrival: () => {
      const h = { hist: arrival, fanout }
      arrival = newHist()
      fanout = newHist()
      return h
    },
  },
  () => (served ? served.stop() : edge.close()),
).ready({ url: edge.url })
