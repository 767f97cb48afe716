import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { EventEmitter } from 'node:events'
import postgres from 'postgres'
import { serveChild } from '../lib/child.ts'
import { memory } from '../lib/memory.ts'

/**
 * The peer baseline, Logtide-style: every server holds its own LISTEN, and each SSE client's handler parses the
 * NOTIFY JSON payload, keeps it if it is for its tenant, and re-serialises it into Hono's `streamSSE`.
 * Publish path: the writer calls pg_notify('baseline', '{"tenant","topic","data"}') in its transaction.
 */
const sql = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} })
const bus = new EventEmitter().setMaxListeners(0)
await sql.listen('baseline', (payload) => bus.emit('n', payload))

const app = new Hono()
app.get('/events/:tenant', (c) => {
  const tenant = c.req.param('tenant')
  return streamSSE(c, async (stream) => {
    let seq = 0
    const onNotify = (payload: string) => {
      const msg = JSON.parse(payload) as { tenant: string; topic: string; data: unknown }
      if (msg.tenant !== tenant) return
      void stream.writeSSE({ id: String(++seq), event: msg.topic, data: JSON.stringify(msg.data) })
    }
    bus.on('n', onNotify)
    stream.onAbort(() => void bus.off('n', onNotify))
    await new Promise<void>((done) => stream.onAbort(done))
  })
})

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  serveChild({ memory }, async () => {
    server.close()
    await sql.end({ timeout: 1 })
  }).ready({ url: `http://127.0.0.1:${info.port}` })
})
