import { serve, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import { pathToFileURL } from 'node:url'
import { createApp } from '../app.ts'
import { createAuth } from '../auth.ts'
import { checkBatch } from '../batch.ts'
import { authOptions, edgeConfig, loadEdgeEnv, memoryRoomsSettings, type EdgeEnv } from '../config.ts'
import { checkPublicKey } from '../keys.ts'
import { memoryRooms, type MemoryRooms } from '../room/rooms.ts'
import { nodeHmac } from '../../shared/node/hmac.ts'
import { nodeStreams, observeFlushes } from './node-sse.ts'
import { log } from '../../shared/log.ts'
import { PATHS } from '../../shared/protocol.ts'
import type { PublishBody, PublishReply } from '../../shared/schema.ts'
import { edgeMetrics } from './node-metrics.ts'
import { metricsAuth } from './metrics-auth.ts'

export interface NodeEdge {
  url: string
  port: number
  rooms: MemoryRooms
  /** Publishes a batch from a relay in this process (`npm run serve`, `npm start`): what POST /internal/publish does, minus HTTP. */
  publish(body: PublishBody): Promise<PublishReply>
  /** What POST /internal/hello answers: this edge's rooms start empty with each process. */
  readonly instance: string
  close(): Promise<void>
}

export interface NodeEdgeOptions {
  /**
   * Adds routes to the edge's app before it serves (e.g. `npm start`'s development page). The edge's own routes
   * win; an extension never sees Postgres through the edge (it brings its own, in its own module).
   */
  extend?: (app: Hono) => void
}

/**
 * Serves the edge on Node with in-memory rooms, plus `GET /metrics` (Prometheus text; Node only, so it is wired
 * here and not in the runtime-neutral app). Streams are written straight to the sockets (node-sse.ts). Resolves
 * once listening (port 0 picks a free port).
 */
export const startNodeEdge = async (env: EdgeEnv, host = '127.0.0.1', options: NodeEdgeOptions = {}): Promise<NodeEdge> => {
  await checkPublicKey(env.EDGE_JWT_PUBLIC_KEY)
  const settings = memoryRoomsSettings(env)
  let rooms: MemoryRooms | undefined
  const metrics = edgeMetrics({ get rooms() { return rooms!.rooms } })
  rooms = memoryRooms({ ...settings, log, observe: metrics.observe })
  const unobserve = observeFlushes(metrics.flushed)
  const app = createApp({ rooms, auth: createAuth(authOptions(env)), config: edgeConfig(env), log, hmac: nodeHmac, streams: nodeStreams(rooms, settings.queue) })
  app.get(PATHS.metrics, metricsAuth(env.EDGE_METRICS_TOKEN), async (c) =>
    c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  )
  options.extend?.(app)
  const local = rooms
  return new Promise((resolve) => {
    const server: ServerType = serve({ fetch: app.fetch, port: env.PORT, hostname: host }, (info: { port: number }) => {
      resolve({
        url: `http://${host}:${info.port}`,
        port: info.port,
        rooms: local,
        publish: async (body) => {
          checkBatch(body, env.EDGE_MAX_EVENT_BYTES)
          return local.get(body.tenant).publish(body)
        },
        instance: local.instance,
        close: () =>
          new Promise<void>((done) => {
            unobserve()
            local.close() // ends every SSE stream so the server can close
            server.close(() => done())
            ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
          }),
      })
    })
  })
}

const main = async () => {
  const edge = await startNodeEdge(loadEdgeEnv(process.env), process.env.HOST ?? '0.0.0.0')
  log('info', 'edge listening', { url: edge.url })
  const stop = async (signal: string) => {
    log('info', 'edge stopping', { signal })
    await edge.close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    log('error', 'edge failed to start', { err: err instanceof Error ? err.message : String(err) })
    process.exit(1)
  })
}
