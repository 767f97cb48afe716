import { createAuth } from '../../edge/auth.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { startRelay, type Relay } from '../../relay/relay.ts'
import { devRoutes } from '../../scripts/dev-routes.ts'
import { freshDatabase } from './db.ts'
import { edgeEnv, relayConfig, testLog } from './stack.ts'

/**
 * What `npm start` runs, for browser tests: a real database, the relay, and the Node edge with the development
 * page and publish route. The edge can be restarted on the same port (same URL, so the relay's cursors still apply).
 */
export const startDevStack = async (edgeExtra: Record<string, string> = {}) => {
  const db = await freshDatabase()
  const env = edgeEnv(edgeExtra)
  const extend = devRoutes({ auth: createAuth(env), sql: db.sql, maxEventBytes: env.EDGE_MAX_EVENT_BYTES })
  let edge: NodeEdge = await startNodeEdge(env, '127.0.0.1', { extend })
  const port = edge.port
  const relay: Relay = await startRelay({ config: relayConfig(db.url, edge.url), log: testLog })
  return {
    db,
    url: edge.url,
    get edge() {
      return edge
    },
    /** Stops the edge (every stream drops), runs `whileDown`, then serves again on the same port. */
    async restartEdge(whileDown: () => Promise<void> = async () => {}) {
      await edge.close()
      await whileDown()
      edge = await startNodeEdge({ ...env, PORT: port }, '127.0.0.1', { extend })
    },
    publish: async (tenant: string, topic: string, data: unknown) => {
      const [row] = await db.sql<{ seq: string }[]>`select relay.publish(${tenant}, ${topic}, ${db.sql.json(data as never)}) as seq`
      return Number(row!.seq)
    },
    async stop() {
      await relay.stop()
      await edge.close()
      await db.drop()
    },
  }
}

export type DevStack = Awaited<ReturnType<typeof startDevStack>>
