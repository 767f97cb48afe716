import { startRelayService } from '../../relay/service.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { loadRelayConfig } from '../../relay/config.ts'
import { startRelay, type Relay } from '../../relay/relay.ts'
import type { Log } from '../../shared/log.ts'
import { freshDatabase, type TestDb } from './db.ts'
import { edgeSettings } from './settings.ts'
import { openStream } from './sse-client.ts'
import { mintToken, RELAY_SECRET } from './tokens.ts'

/** Quiet in tests unless EDGE_RELAY_TEST_LOG=1. */
export const testLog: Log = (level, msg, fields) => {
  if (process.env.EDGE_RELAY_TEST_LOG) console.error(level, msg, fields ?? '')
}

/** A test edge's settings: the test secrets, a free port on loopback, and `extra`. */
export const edgeEnv = edgeSettings

export const relayConfig = (databaseUrl: string, edgeUrl: string, extra: Record<string, string> = {}) =>
  loadRelayConfig({ DATABASE_URL: databaseUrl, EDGE_URL: edgeUrl, RELAY_SECRET, RELAY_SWEEP_MS: '500', ...extra })

/** The two shapes a relay reaches a Node edge in: over signed HTTP (`npm run relay`), or by a call in one process (`npm run serve`). */
export type Shape = 'split' | 'serve'

/** A relay and what stops it (in the `serve` shape, its /healthz port too). */
export interface RunningRelay {
  relay: Relay
  stop(): Promise<void>
}

/**
 * A relay for `edge`, in either shape. `serve` is `npm run serve`'s own wiring (cli/compose.ts) around an edge the
 * test started, so the relay can stop and start again while the edge and its streams stay up. Its /healthz port is
 * a free one: test files run side by side.
 */
export const launchRelay = (shape: Shape, db: TestDb, edge: NodeEdge, extra: Record<string, string> = {}): Promise<RunningRelay> =>
  shape === 'serve'
    ? startRelayService({
        config: loadRelayConfig(
          { DATABASE_URL: db.url, RELAY_SECRET, RELAY_SWEEP_MS: '500', RELAY_PORT: '0', ...extra },
          { localEdge: true },
        ),
        log: testLog,
        local: edge,
      })
    : startRelay({ config: relayConfig(db.url, edge.url, extra), log: testLog }).then((relay) => ({ relay, stop: () => relay.stop() }))

/** A real Postgres database, a Node edge and a relay, all in this process. */
export const startStack = async (opts: { edge?: Record<string, string>; relay?: Record<string, string>; shape?: Shape } = {}) => {
  const db: TestDb = await freshDatabase()
  const edge: NodeEdge = await startNodeEdge(edgeEnv(opts.edge))
  const launch = () => launchRelay(opts.shape ?? 'split', db, edge, opts.relay)
  let running: RunningRelay | undefined = await launch()
  const stack = {
    db,
    edge,
    get relay() {
      return running?.relay
    },
    async startRelay() {
      running = await launch()
    },
    async stopRelay() {
      await running?.stop()
      running = undefined
    },
    publish: async (tenant: string, topic: string, data: unknown) => {
      const [row] = await db.sql<{ seq: string }[]>`select relay.publish(${tenant}, ${topic}, ${db.sql.json(data as never)}) as seq`
      return Number(row!.seq)
    },
    /** Opens an SSE stream for `tenant` with a token granting `topics` (default: all). */
    subscribe: async (tenant: string, q: { topics?: string; grant?: string[]; lastEventId?: number } = {}) => {
      const token = await mintToken({ tenant, ...(q.grant ? { topics: q.grant } : {}) })
      const params = new URLSearchParams()
      if (q.topics) params.set('topics', q.topics)
      const headers: Record<string, string> = { authorization: `Bearer ${token}` }
      if (q.lastEventId !== undefined) headers['last-event-id'] = String(q.lastEventId)
      return openStream(`${edge.url}/v1/tenants/${tenant}/events?${params}`, headers)
    },
    async stop() {
      await running?.stop()
      await edge.close()
      await db.drop()
    },
  }
  return stack
}

export type Stack = Awaited<ReturnType<typeof startStack>>
