/**
 * The edge on Deno: the same Hono app as on Workers and Node, with rooms in memory, or with EDGE_ROOMS=kv shared
 * through Deno KV by every instance (Deno Deploy; docs/deno.md). `npx deno task edge` (the `deno` binary comes with
 * `npm install`). Its variables are the edge's (docs/configuration.md); PORT 0 picks a free port. The only file that
 * calls Deno's own APIs.
 */
import { loadEdgeEnv } from '../config.ts'
import { createEdge } from '../create.ts'
import type { EdgeSettings } from '../config.ts'
import { kvRooms } from '../room/kv/kv-rooms.ts'
import { memoryRooms } from '../room/memory-rooms.ts'
import { PortInUseError, startFailureLines } from '../../shared/env.ts'
import { log, setLogLevel } from '../../shared/log.ts'

/** Rooms in memory, or in Deno KV (a file at EDGE_KV_PATH, or Deno's default: on Deno Deploy, the app's KV). */
const openRooms = async (settings: EdgeSettings) => {
  if (settings.EDGE_ROOMS === 'memory') {
    // Deno Deploy runs several instances: rooms in one of them miss what the relay posts to another.
    if (Deno.env.get('DENO_DEPLOYMENT_ID'))
      log('warn', 'rooms in memory on Deno Deploy: subscribers miss events posted to other instances; set EDGE_ROOMS=kv')
    return { rooms: memoryRooms(settings, { log }), closeKv: () => {} }
  }
  const path = settings.EDGE_KV_PATH
  const dir = path?.replace(/[\\/][^\\/]*$/, '')
  if (dir && dir !== path) await Deno.mkdir(dir, { recursive: true })
  const kv = await Deno.openKv(path)
  log('info', 'rooms in Deno KV', { path: path ?? "Deno's default" })
  return { rooms: await kvRooms(kv, settings, { log }), closeKv: () => kv.close() }
}

const start = async () => {
  const settings = loadEdgeEnv(Deno.env.toObject())
  setLogLevel(settings.LOG_LEVEL)
  const { rooms, closeKv } = await openRooms(settings)
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
  let stopping = false
  const stop = async (signal: string) => {
    // `deno task` passes a signal on, so one sent to the process group arrives twice.
    if (stopping) return
    stopping = true
    log('info', 'edge stopping', { signal })
    rooms.close() // ends every SSE stream so the server can finish
    await server.shutdown()
    closeKv()
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
