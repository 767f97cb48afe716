import { serve, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import { pathToFileURL } from 'node:url'
import { checkBatch } from '../batch.ts'
import { loadEdgeEnv, type EdgeSettings } from '../config.ts'
import { createEdge } from '../create.ts'
import { memoryRooms, type MemoryRooms } from '../room/memory-rooms.ts'
import { ConfigError, startFailureLines } from '../../shared/env.ts'
import { log, setLogLevel } from '../../shared/log.ts'
import { nodeHmac } from '../../shared/node/hmac.ts'
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
  /**
   * Adds routes to the edge's app before it serves (e.g. `npm start`'s development page). The edge's own routes
   * win; an extension never sees Postgres through the edge (it brings its own, in its own module).
   */
  extend?: (app: Hono) => void
}

/** A URL for an address to listen on (an IPv6 address goes in brackets). */
const urlFor = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`

/**
 * Serves the edge on Node with in-memory rooms, plus `GET /metrics` (Prometheus text; Node only, so it is wired
 * here and not in the runtime-neutral app). Streams are written straight to the sockets (node-sse.ts). Listens on
 * `host` (default: the settings' HOST) and resolves once listening (PORT 0 picks a free port).
 * @throws RelayError CONFIG_INVALID for a configured public key that does not import, or EDGE_ROOMS=kv
 */
export const startNodeEdge = async (settings: EdgeSettings, host = settings.HOST, options: NodeEdgeOptions = {}): Promise<NodeEdge> => {
  if (settings.EDGE_ROOMS !== 'memory')
    throw new ConfigError([`EDGE_ROOMS: ${settings.EDGE_ROOMS} is for the Deno edge; Node keeps its rooms in memory`])
  const metrics = edgeMetrics({
    get rooms() {
      return rooms.rooms
    },
  })
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
  return new Promise((resolve) => {
    const server: ServerType = serve({ fetch: app.fetch, port: settings.PORT, hostname: host }, (info: { port: number }) => {
      resolve({
        url: urlFor(host, info.port),
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
  })
}

/** `npm run edge`: the settings from process.env, every bad variable on a line of its own. */
const main = async () => {
  const settings = loadEdgeEnv(process.env)
  setLogLevel(settings.LOG_LEVEL)
  const edge = await startNodeEdge(settings)
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
    for (const line of startFailureLines(err)) log('error', line)
    log('error', 'edge failed to start')
    process.exit(1)
  })
}
