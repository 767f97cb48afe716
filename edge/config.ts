import * as v from 'valibot'
import { DEFAULTS } from '../shared/protocol.ts'
import { intVar, parseEnv, secretVar } from '../shared/env.ts'

const EdgeEnv = v.object({
  PORT: intVar(0, 65535, 8787),
  EDGE_JWT_SECRET: secretVar('EDGE_JWT_SECRET'),
  RELAY_SECRET: secretVar('RELAY_SECRET'),
  HEARTBEAT_MS: intVar(1000, 300_000, DEFAULTS.heartbeatMs),
  RETRY_MS: intVar(0, 600_000, DEFAULTS.retryMs),
  HISTORY_LIMIT: intVar(1, 10_000_000, DEFAULTS.historyLimit),
})
export type EdgeEnv = v.InferOutput<typeof EdgeEnv>

/** Edge settings from env (Node, Deno and Workers bindings alike). */
export const loadEdgeEnv = (env: Record<string, string | undefined>): EdgeEnv => parseEnv(EdgeEnv, env)
