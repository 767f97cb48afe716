import postgres from 'postgres'
import { plainSse } from '../lib/plain-sse.ts'

/**
 * The floor under any relay, as a server: commit → NOTIFY → one process → a socket write to every client. One LISTEN
 * (postgres.js, as our relay's), plain node:http, no outbox read, no auth, no rooms: each notification's payload is
 * the event's data (the writer's `floor-publish` mode puts it there) and goes to every client as one frame, the frames
 * of one turn in one write per client, as ours batches. Env: DATABASE_URL.
 */
const sse = plainSse()
const sql = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} })
await sql.listen('floor', (payload) => sse.send('bench', payload))
sse.listen(() => sql.end({ timeout: 1 }))
