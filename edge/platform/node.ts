import { serve, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import { pathToFileURL } from 'node:url'
import { createApp } from '../app.ts'
import { createAuth } from '../auth.ts'
import { checkBatch } from '../batch.ts'
import { authOptions, edgeConfig, loadEdgeEnv, type EdgeEnv } from '../config.ts'
import { checkPublicKey } from '../keys.ts'
import { memoryRooms } from '../room/rooms.ts'
import { nodeHmac } from '../../shared/node/hmac.ts'
import { nodeStreamServer, observeFlushes } from './node-sse.ts'
import { log } from '../../shared/log.ts'
import { PATHS } from '../../shared/protocol.ts'
import type { PublishBody, PublishReply } from '../../shared/schema.ts'
import { edgeMetrics } from './node-metrics.ts'
import { metricsAuth } from './metrics-auth.ts'

export interface NodeEdge {
  url: string
  port: number
  rooms: ReturnType<typeof memoryRooms>
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
  /** Bytes a subscriber may have unsent before it is dropped as too slow. */
  queueBytes?: number
  /** false: serve streams through Hono's portable ReadableStream path (for comparison in the benchmark). */
  fastPath?: boolean
}

/**
 * Serves the edge on Node with in-memory rooms, plus `GET /metrics` (Prometheus text; Node only, so it is wired
 * here and not in the runtime-neutral app). Resolves once listening (port 0 picks a free port).
 */
export const startNodeEdge = async (env: EdgeEnv, host = '127.0.0.1', options: NodeEdgeOptions = {}): Promise<NodeEdge> => {
  await checkPublicKey(env.EDGE_JWT_PUBLIC_KEY)
  const queue = { bytes: options.queueBytes ?? env.SUBSCRIBER_QUEUE_BYTES, events: env.SUBSCRIBER_QUEUE_EVENTS }
  const rooms = memoryRooms({
    historyLimit: env.HISTORY_LIMIT,
    historyBytes: env.HISTORY_MAX_BYTES,
    log,
    heartbeatMs: env.HEARTBEAT_MS,
    queueEvents: queue.events,
    queueBytes: queue.bytes,
  })
  const metrics = edgeMetrics(rooms)
  const unobserve = observeFlushes(metrics.flushed)
  const fast = nodeStreamServer(rooms, queue)
  const instrumented = metrics.instrument(rooms)
  const app = createApp({
    rooms: instrumented,
    auth: createAuth(authOptions(env)),
    config: edgeConfig(env),
    log,
    hmac: nodeHmac,
    // Every authorised stream passes here (so it is counted here, on either path). Bytes straight to the socket,
    // coalesced per turn (see node-sse.ts); undefined falls back to the portable ReadableStream path.
    serveStream: (c, tenant, request, ended) => {
      metrics.connected(tenant, request)
      return options.fastPath === false ? undefined : fast(c, tenant, request, ended)
    },
  })
  app.get(PATHS.metrics, metricsAuth(env.EDGE_METRICS_TOKEN), async (c) =>
    c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  )
  options.extend?.(app)
  return new Promise((resolve) => {
    const server: ServerType = serve({ fetch: app.fetch, port: env.PORT, hostname: host }, (info: { port: number }) => {
      resolve({
        url: `http://${host}:${info.port}`,
        port: info.port,
        rooms,
        publish: async (body) => {
          checkBatch(body, env.EDGE_MAX_EVENT_BYTES)
          return instrumented.get(body.tenant).publish(body)
        },
        instance: rooms.instance,
        close: () =>
          new Promise<void>((done) => {
            unobserve()
            rooms.close() // ends every SSE stream so the server can close
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
