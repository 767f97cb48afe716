import postgres from 'postgres'
import { newHist, nowMs, record, stampOf } from '../lib/hist.ts'
import { plainSse } from '../lib/plain-sse.ts'

/**
 * The floor under any relay, as a server: commit → NOTIFY → one process → a socket write to every client. One LISTEN
 * (postgres.js, as our relay's), plain node:http, no outbox read, no auth, no rooms: each notification's payload is
 * the event's data (the writer's `floor-publish` mode puts it there) and goes to every client as one frame, the frames
 * of one turn in one write per client, as ours batches. Env: DATABASE_URL.
 * Answers `arrival` as our edge child does: commit → the notification here, and the span of each flush to ≥ 100 clients.
 */
let arrival = newHist()
let fanout = newHist()
const sse = plainSse(undefined, (clients, ms) => clients >= 100 && record(fanout, ms))
const sql = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} })
await sql.listen('floor', (payload) => {
  const t = stampOf(payload)
  if (t !== undefined) record(arrival, nowMs() - t)
  sse.send('bench', payload)
})
sse.listen(() => sql.end({ timeout: 1 }), {
  arrival: () => {
    const h = { hist: arrival, fanout }
    arrival = newHist()
    fanout = newHist()
    return h
  },
})
