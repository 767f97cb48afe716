/**
 * The edge on Deno: the same Hono app as on Workers and Node, with in-memory rooms. `deno task edge`.
 * Its variables are the edge's (docs/configuration.md); PORT 0 picks a free port.
 */
import { loadEdgeEnv } from '../config.ts'
import { createEdge } from '../create.ts'
import { memoryRooms } from '../room/memory-rooms.ts'
import { startFailureLines } from '../../shared/env.ts'
import { log, setLogLevel } from '../../shared/log.ts'

const start = async () => {
  const settings = loadEdgeEnv(Deno.env.toObject())
  setLogLevel(settings.LOG_LEVEL)
  const rooms = memoryRooms(settings, { log })
  const app = await createEdge(settings, { rooms, log })
  // One line on stdout with the URL, so scripts and tests can find a port chosen by the kernel.
  const onListen = ({ hostname, port }: Deno.NetAddr) =>
    console.log(JSON.stringify({ level: 'info', msg: 'edge listening', url: `http://${hostname}:${port}` }))
  const server = Deno.serve({ port: settings.PORT, hostname: settings.HOST, onListen }, app.fetch)
  const stop = async (signal: string) => {
    log('info', 'edge stopping', { signal })
    rooms.close() // ends every SSE stream so the server can finish
    await server.shutdown()
    Deno.exit(0)
  }
  Deno.addSignalListener('SIGINT', () => void stop('SIGINT'))
  Deno.addSignalListener('SIGTERM', () => void stop('SIGTERM'))
}

start().catch((err: unknown) => {
  for (const line of startFailureLines(err)) log('error', line)
  log('error', 'edge failed to start')
  Deno.exit(1)
})
