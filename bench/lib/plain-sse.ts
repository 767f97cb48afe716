import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { serveChild } from './child.ts'
import { memory } from './memory.ts'

/**
 * A plain `node:http` SSE server doing nothing else, for the references ours is compared with (children/raw.ts,
 * children/floor.ts): GET subscribes; `send` queues a frame for every client, and the frames queued in one event-loop
 * turn leave in one socket write per client, as our edge batches and writes (one write per subscriber per turn).
 * `onRequest` handles anything but GET. Announces its URL to the bench once listening.
 */
export const plainSse = (
  onRequest: (req: IncomingMessage, res: ServerResponse) => void = (_, res) => res.writeHead(404).end(),
  /** Told after each flush how many clients it wrote to and how long that took (ms), as our edge's observeFlushes. */
  onFlush: (clients: number, ms: number) => void = () => {},
) => {
  const clients = new Set<ServerResponse>()
  const CRLF = Buffer.from('\r\n')
  let pending: Buffer[] = []
  const flush = () => {
    const body = pending.length === 1 ? pending[0]! : Buffer.concat(pending)
    pending = []
    // Framed as one HTTP/1.1 chunk once, written straight to each socket: the cheapest way Node has, and the way ours writes.
    // (res.write per client corks each socket until the next tick, so no client gets a byte before the last write.)
    const t0 = performance.now()
    const chunk = Buffer.concat([Buffer.from(`${body.byteLength.toString(16)}\r\n`), body, CRLF])
    for (const c of clients) c.socket?.write(chunk)
    onFlush(clients.size, performance.now() - t0)
  }
  const server = createServer((req, res) => {
    if (req.method !== 'GET') return onRequest(req, res)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write('retry: 1000\n\n')
    clients.add(res)
    res.on('close', () => clients.delete(res))
  })
  let seq = 0
  return {
    /** Queues one event frame (`id` counts up from 1) for every client; written at the end of this turn. */
    send(event: string, data: string) {
      if (pending.push(Buffer.from(`id: ${++seq}\nevent: ${event}\ndata: ${data}\n\n`)) === 1) setImmediate(flush)
    },
    /** Listens on a free port, then serves the bench's commands (`memory`, and `handlers`) and announces its URL. */
    listen(onExit: () => Promise<void> | void = () => {}, handlers: Record<string, () => unknown> = {}) {
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number }
        serveChild({ memory, ...handlers }, async () => {
          for (const c of clients) c.destroy()
          server.close()
          await onExit()
        }).ready({ url: `http://127.0.0.1:${port}` })
      })
    },
  }
}
