import { createServer, type ServerResponse } from 'node:http'
import { serveChild } from '../lib/child.ts'
import { memory } from '../lib/memory.ts'

/**
 * The reference: a plain node:http SSE server doing nothing else. GET /events subscribes; POST /publish
 * {events: [{seq, topic, data}]} encodes each frame once and `res.write`s it to every subscriber.
 */
const clients = new Set<ServerResponse>()
const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write('retry: 1000\n\n')
    clients.add(res)
    res.on('close', () => clients.delete(res))
    return
  }
  const parts: Buffer[] = []
  req.on('data', (c: Buffer) => parts.push(c))
  req.on('end', () => {
    const { events } = JSON.parse(Buffer.concat(parts).toString()) as { events: { seq: number; topic: string; data: string }[] }
    for (const e of events) {
      const frame = Buffer.from(`id: ${e.seq}\nevent: ${e.topic}\ndata: ${e.data}\n\n`)
      for (const c of clients) c.write(frame)
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
})
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  serveChild({ memory }, () => {
    for (const c of clients) c.destroy()
    server.close()
  }).ready({ url: `http://127.0.0.1:${port}` })
})
