import { connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy in front of `targetPort` (the edge, or Postgres): `block()` cuts every connection and refuses new ones
 * (e.g. the edge is unreachable from the relay while its subscribers stay connected), `unblock()` restores it.
 */
export const startProxy = async (targetPort: number) => {
  const sockets = new Set<Socket>()
  let blocked = false
  let frozen = false
  const server: Server = createServer((client) => {
    if (blocked) return client.destroy()
    if (frozen) {
      sockets.add(client.resume().on('error', () => {}))
      return void client.on('close', () => sockets.delete(client))
    }
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    client.on('close', () => (upstream.destroy(), pairs.delete(pair)))
    upstream.on('close', () => client.destroy())
  })
  const pairs = new Set<[Socket, Socket]>()
  const block = () => {
    blocked = true
    for (const s of sockets) s.destroy()
  }
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
  return {
    url: `http://127.0.0.1:${port}`,
    block,
    /**
     * A silent cut: connections stay open but carry no more bytes (and new ones hang). Closing one side still
     * closes the other, as the kernel of a host that is gone would eventually do.
     */
    freeze() {
      frozen = true
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        // Read and drop (packets lost), so that a FIN or RST is still noticed and passed on as a close.
        client.resume()
        upstream.resume()
      }
    },
    unblock() {
      blocked = false
    },
    close: () => new Promise<void>((resolve) => (block(), server.close(() => resolve()))),
  }
}
