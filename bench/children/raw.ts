import { plainSse } from '../lib/plain-sse.ts'

/**
 * The fan-out reference: plain node:http SSE with the same batching as ours. POST /publish {events: [{topic, data}]}
 * (at most BATCH_EVENTS, as the relay posts) queues each event's frame, encoded once for all clients, and the frames of
 * a batch leave in one socket write per client, as our edge writes a batch (lib/plain-sse.ts). Nothing else: no
 * signature, no schema, no history, no per-client queue bound.
 */
const sse = plainSse((req, res) => {
  const parts: Buffer[] = []
  req.on('data', (c: Buffer) => parts.push(c))
  req.on('end', () => {
    const { events } = JSON.parse(Buffer.concat(parts).toString()) as { events: { topic: string; data: string }[] }
    for (const e of events) sse.send(e.topic, e.data)
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
})
sse.listen()
