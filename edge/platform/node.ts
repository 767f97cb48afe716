import { serve, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import { checkBatch } from '../batch.ts'
import { loadEdgeEnv, type EdgeSettings } from '../config.ts'
import { createEdge } from '../create.ts'
import { memoryRooms, type MemoryRooms } from '../room/memory-rooms.ts'
import { ConfigError, portInUse } from '../../shared/env.ts'
import { log, setLogLevel } from '../../shared/log.ts'
import { nodeHmac } from '../../shared/node/hmac.ts'
import { isMain, runProcess } from '../../shared/node/process.ts'
import { PATHS } from '../../shared/protocol.ts'
import type { PublishBody, PublishReply } from '../../shared/schema.ts'
import { metricsAuth } from './metrics-auth.ts'
import { edgeMetrics } from './node-metrics.ts'
import { nodeStreams, observeFlushes } from './node-sse.ts'

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
  /** Adds routes before it serves (`npm start`'s development page). The edge's own routes win; it never lends Postgres to one. */
  extend?: (app: Hono) => void
}

/**
 * Serves the edge on Node with in-memory rooms and `GET /metrics` (Node only, so wired here), streams written straight to the sockets
 * (node-sse.ts). Listens on `host` (default: HOST) and resolves once listening (PORT 0 picks a free port).
 * @throws RelayError CONFIG_INVALID for a configured public key that does not import, or EDGE_ROOMS=kv
 */
export const startNodeEdge = async (settings: EdgeSettings, host = settings.HOST, options: NodeEdgeOptions = {}): Promise<NodeEdge> => {
  if (settings.EDGE_ROOMS !== 'memory')
    throw new ConfigError([`EDGE_ROOMS: ${settings.EDGE_ROOMS} is for the Deno edge; Node keeps its rooms in memory`])
  const metrics = edgeMetrics(() => rooms.rooms)
  const rooms = memoryRooms(settings, { log, observe: metrics.observe })
  const app = await createEdge(settings, { rooms, streams: nodeStreams(rooms, settings), hmac: nodeHmac, log }).catch((err: unknown) => {
    rooms.close()
    throw err
  })
  app.get(PATHS.metrics, metricsAuth(settings.EDGE_METRICS_TOKEN), async (c) =>
    c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  )
  options.extend?.(app)
  const unobserve = observeFlushes(metrics.flushed)
  return new Promise((resolve, reject) => {
    const server: ServerType = serve({ fetch: app.fetch, port: settings.PORT, hostname: host }, (info: { port: number }) => {
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${info.port}`, // an IPv6 address goes in brackets
        port: info.port,
        rooms,
        publish: async (body) => {
          checkBatch(body, settings.EDGE_MAX_EVENT_BYTES)
          return rooms.get(body.tenant).publish(body)
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
    // A port already taken is a start failure that names PORT, not a crash with a stack trace.
    server.once('error', (err) => {
      unobserve()
      rooms.close()
      reject(portInUse(err, 'PORT', settings.PORT, host))
    })
  })
}

/** `npm run edge`, `edge-relay edge`: the settings from process.env, every bad variable on a line of its own (see runProcess). */
export const runNodeEdge = () =>
  runProcess('edge', async () => {
    const settings = loadEdgeEnv(process.env)
    setLogLevel(settings.LOG_LEVEL)
    const edge = await startNodeEdge(settings)
    log('info', 'edge listening', { url: edge.url })
    return { stop: edge.close }
  })

if (isMain(import.meta.url)) runNodeEdge()
