/**
 * The relay and the Node edge in one process: the one place that composes them (`npm run serve`, `npm start`, the
 * benchmark's in-process stack, the tests' `serve` shape). It sits above both because neither may import the other:
 * the relay reaches this edge through its LocalEdge interface — a batch by a function call, no HTTP, no signature —
 * and knows every other edge only by the wire.
 */
import { loadEdgeEnv, type EdgeSettings } from '../edge/config.ts'
import { startNodeEdge, type NodeEdge, type NodeEdgeOptions } from '../edge/platform/node.ts'
import { loadRelayConfig, type RelayConfig } from '../relay/config.ts'
import { startRelayService } from '../relay/service.ts'
import { ConfigError } from '../shared/env.ts'
import type { Log } from '../shared/log.ts'

export interface ServeConfig {
  relay: RelayConfig
  edge: EdgeSettings
}

/**
 * Both configurations from one environment, checked before anything starts: the error names every bad variable of
 * either, each once (RELAY_SECRET belongs to both). With an edge in the process, EDGE_URL is optional and lists
 * only further edges.
 */
export const loadServeConfig = (env: Record<string, string | undefined>): ServeConfig => {
  const problems: string[] = []
  const checked = <T>(load: () => T): T | undefined => {
    try {
      return load()
    } catch (err) {
      problems.push(...(err instanceof ConfigError ? err.issues : [err instanceof Error ? err.message : String(err)]))
    }
  }
  const relay = checked(() => loadRelayConfig(env, { localEdge: true }))
  const edge = checked(() => loadEdgeEnv(env))
  if (!relay || !edge || problems.length) throw new ConfigError([...new Set(problems)])
  return { relay, edge }
}

export interface ServeOptions {
  config: ServeConfig
  /** The relay's log (the edge logs through shared/log.ts). */
  log: Log
  /** The edge's listening address (default: its HOST). */
  host?: string
  edge?: NodeEdgeOptions
}

/**
 * Starts the Node edge, then the relay delivering to it. `stop` runs in the opposite order: the relay first, so
 * that batches in flight still reach the rooms; then the relay's port; then the edge, which ends every stream.
 */
export const startServe = async ({ config, log, host, edge: options = {} }: ServeOptions) => {
  const edge: NodeEdge = await startNodeEdge(config.edge, host ?? config.edge.HOST, options)
  const local = await startRelayService({ config: config.relay, log, local: edge }).catch(async (err: unknown) => {
    await edge.close()
    throw err
  })
  return {
    edge,
    relay: local.relay,
    relayServer: local.relayServer,
    /** Where the relay's /healthz and /metrics answer. */
    relayUrl: local.url,
    async stop() {
      await local.stop()
      await edge.close()
    },
  }
}
