/**
 * The edge on Deno: the same Hono app as on Workers and Node, with in-memory rooms. `npx deno task edge` (the `deno`
 * binary comes with `npm install`; a bare `deno task edge` needs Deno on the PATH).
 * Its variables are the edge's (docs/configuration.md); PORT 0 picks a free port.
 */
import { loadEdgeEnv } from '../config.ts'
import { createEdge } from '../create.ts'
import { memoryRooms } from '../room/memory-rooms.ts'
import { PortInUseError, startFailureLines } from '../../shared/env.ts'
import { log, setLogLevel } from '../../shared/log.ts'

const start = async () => {
  const settings = loadEdgeEnv(Deno.env.toObject())
  setLogLevel(settings.LOG_LEVEL)
  const rooms = memoryRooms(settings, { log })
  const app = await createEdge(settings, { rooms, log })
  // One line on stdout with the URL, so scripts and tests can find a port chosen by the kernel.
  const onListen = ({ hostname, port }: Deno.NetAddr) =>
    console.log(JSON.stringify({ level: 'info', msg: 'edge listening', url: `http://${hostname}:${port}` }))
  const server = (() => {
    try {
      return Deno.serve({ port: settings.PORT, hostname: settings.HOST, onListen }, app.fetch)
    } catch (err) {
      rooms.close()
      throw err instanceof Deno.errors.AddrInUse ? new PortInUseError('PORT', settings.PORT, settings.HOST) : err
    }
  })()
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
  // Plain lines first, for the person at the terminal; then the JSON log line (as shared/node/process.ts does).
  const problems = startFailureLines(err)
  for (const line of problems) console.error(`edge: ${line}`)
  log('error', 'edge failed to start', { problems })
  Deno.exit(1)
})
