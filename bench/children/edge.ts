import { loadEdgeEnv } from '../../edge/config.ts'
import { startNodeEdge } from '../../edge/platform/node.ts'
import type { RoomStub } from '../../edge/room/rooms.ts'
import { serveChild } from '../lib/child.ts'
import { newHist, nowMs, record } from '../lib/hist.ts'
import { memory } from '../lib/memory.ts'

/** Our Node edge in its own process (env: EDGE_JWT_SECRET, RELAY_SECRET; BENCH_FAST_PATH=0 for the portable path). */
const edge = await startNodeEdge(loadEdgeEnv({ ...process.env, PORT: '0' }), '127.0.0.1', {
  fastPath: process.env.BENCH_FAST_PATH !== '0',
})

// Where the time goes: commit → the relay's batch reaching the room (the rest is edge → client).
let arrival = newHist()
const get = edge.rooms.get
edge.rooms.get = (tenant) => {
  const stub: RoomStub = get(tenant)
  return {
    ...stub,
    publish: (body) => {
      const now = nowMs()
      for (const e of body.events) {
        const t = (e.data as { t?: unknown } | null)?.t
        if (typeof t === 'number') record(arrival, now - t)
      }
      return stub.publish(body)
    },
  }
}

serveChild(
  {
    memory,
    arrival: () => {
      const h = arrival
      arrival = newHist()
      return { hist: h }
    },
  },
  () => edge.close(),
).ready({ url: edge.url })
