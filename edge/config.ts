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

const RoomEnv = v.object({
  HISTORY_LIMIT: intVar(1, 10_000_000, DEFAULTS.historyLimit),
  /** Seconds a Durable Object room keeps events for resume (0 = until HISTORY_LIMIT pushes them out). */
  HISTORY_MAX_AGE_S: intVar(0, 365 * 86_400, 86_400),
})
export type RoomEnv = v.InferOutput<typeof RoomEnv>

/** A Durable Object room's settings from its bindings (it needs no secrets). */
export const loadRoomEnv = (env: Record<string, string | undefined>): RoomEnv => parseEnv(RoomEnv, env)

const WorkersEnv = v.object({ ...EdgeEnv.entries, ...RoomEnv.entries })
export type WorkersEnv = v.InferOutput<typeof WorkersEnv>

/** The Worker's settings from its vars and secrets (`wrangler.toml` [vars], `wrangler secret put`). */
export const loadWorkersEnv = (env: Record<string, string | undefined>): WorkersEnv => parseEnv(WorkersEnv, env)
