import { loadEdgeEnv } from '../../edge/config.ts'
import { loadRelayConfig } from '../../relay/config.ts'
import { startRelay } from '../../relay/relay.ts'
import { startNodeEdge } from '../../edge/platform/node.ts'
import { observeFlushes } from '../../edge/platform/node-sse.ts'
import type { RoomStub } from '../../edge/room/rooms.ts'
import { quietLog as quiet, serveChild } from '../lib/child.ts'
import { newHist, nowMs, record } from '../lib/hist.ts'
import { memory } from '../lib/memory.ts'

/**
 * Our Node edge in its own process (env: EDGE_JWT_SECRET, RELAY_SECRET; BENCH_FAST_PATH=0 for the portable path).
 * With BENCH_WITH_RELAY=1 (and DATABASE_URL), the relay runs in this process too and delivers to the edge by a
 * function call: `npm run serve`, the single-process deployment on Node.
 */
const edge = await startNodeEdge(loadEdgeEnv({ ...process.env, PORT: '0' }), '127.0.0.1', {
  fastPath: process.env.BENCH_FAST_PATH !== '0',
})

// Where the time goes: commit → the relay's batch reaching the room (the rest is edge → client), and how long the
// edge takes to write one flush to 100 or more subscribers (the fan-out span of a hot event).
let arrival = newHist()
let fanout = newHist()
observeFlushes((subscribers, ms) => subscribers >= 100 && record(fanout, ms))
const get = edge.rooms.get
edge.rooms.get = (tenant) => {
  const stub: RoomStub = get(tenant)
  return {
    ...stub,
    publish: (body) => {
      const now = nowMs()
      for (const e of body.events) {
        // Data arrives as JSON text: read the writer's send time without parsing the whole event.
        const t = T_FIELD.exec(e.data)?.[1]
        if (t !== undefined) record(arrival, now - Number(t))
      }
      return stub.publish(body)
    },
  }
}

const T_FIELD = /"t": ?([0-9.]+)/

const relay =
  process.env.BENCH_WITH_RELAY === '1'
    ? await startRelay({ config: loadRelayConfig(process.env, { localEdge: true }), log: quiet, local: edge })
    : undefined

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
  async () => (await relay?.stop(), await edge.close()),
).ready({ url: edge.url })
