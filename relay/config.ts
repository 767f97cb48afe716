import * as v from 'valibot'
import { DEFAULTS } from '../shared/protocol.ts'
import { intVar, parseEnv, secretVar } from '../shared/env.ts'

const url = (name: string, protocols: RegExp) =>
  v.pipe(v.string(), v.trim(), v.url(`${name} must be a URL`), v.regex(protocols, `${name} has the wrong scheme`))

const edgeList = v.pipe(
  v.string('EDGE_URL is required (the edge base URL, e.g. http://127.0.0.1:8787)'),
  v.transform((s) => s.split(',').map((u) => u.trim().replace(/\/+$/, '')).filter(Boolean)),
  v.check((us) => us.every((u) => /^https?:\/\/[^\s]+$/.test(u)), 'EDGE_URL entries must be http(s) URLs'),
)

const RelayEnv = v.object({
  DATABASE_URL: url('DATABASE_URL', /^postgres(?:ql)?:\/\//),
  /** One edge URL, or several separated by commas (each gets its own cursors). */
  EDGE_URL: v.pipe(edgeList, v.minLength(1, 'EDGE_URL lists no URL')),
  /**
   * With an edge in the relay's own process (`npm run serve`, `npm start`): the name its cursors are kept under. A
   * leader/standby pair of serve processes that post to each other names each local edge by the URL the other
   * lists in EDGE_URL, so that both relays keep one cursor per edge.
   */
  RELAY_LOCAL_EDGE: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\S{1,200}$/, 'RELAY_LOCAL_EDGE must be one word or URL')), 'local'),
  RELAY_SECRET: secretVar('RELAY_SECRET'),
  RELAY_PORT: intVar(0, 65535, 8788),
  RELAY_HOST: v.optional(v.string(), '127.0.0.1'),
  RELAY_BATCH_SIZE: intVar(1, 10_000, DEFAULTS.batchSize),
  /** Event data bytes per batch (a larger single event goes alone); keep it well under the edge's body limit. */
  RELAY_BATCH_BYTES: intVar(1024, 64 * 1024 * 1024, DEFAULTS.batchBytes),
  /** Safety-net sweep: catches tenants whose head moved without a nudge. */
  RELAY_SWEEP_MS: intVar(100, 3_600_000, 5_000),
  /** Longest wait between retries to an unreachable edge. */
  RELAY_RETRY_CAP_MS: intVar(10, 600_000, 5_000),
  /** When a room reports it lost events, resend at most this many (older ones: the room starts later). */
  RELAY_RESEND_MAX: intVar(1, 10_000_000, DEFAULTS.historyLimit),
  /**
   * `notify` (default): one LISTEN connection, NOTIFY nudges. `poll`: no LISTEN; the relay compares heads with its
   * cursors every RELAY_POLL_MS (pair it with `alter database … set relay.notify = 'off'`).
   */
  RELAY_MODE: v.optional(v.picklist(['notify', 'poll'], 'RELAY_MODE must be notify or poll'), 'notify'),
  /** Poll mode: how often heads are compared with cursors. */
  RELAY_POLL_MS: intVar(10, 600_000, 250),
  /** Hot standby: how often a standby tries to take the leader lock, and the leader checks it still holds it. */
  RELAY_LEADER_CHECK_MS: intVar(50, 60_000, 1_000),
  /** Retention: events older than this many seconds are pruned once every edge has them (0 = no age limit). */
  RELAY_RETENTION_AGE_S: intVar(0, 10 * 365 * 86_400, 7 * 86_400),
  /** Retention: at most this many newest events kept per tenant once every edge has them (0 = no count limit). */
  RELAY_RETENTION_COUNT: intVar(0, 1_000_000_000, 0),
  /** Retention: how often the prune runs (0 = never). */
  RELAY_RETENTION_INTERVAL_MS: intVar(0, 86_400_000, 60_000),
})
export type RelayConfig = v.InferOutput<typeof RelayEnv>

/** With an edge in this process, EDGE_URL is optional: it lists only the other edges. */
const ServeEnv = v.pipe(
  v.object({ ...RelayEnv.entries, EDGE_URL: v.optional(edgeList, '') }),
  v.forward(
    // Two deliverers under one cursor name would move each other's cursors.
    v.check((env) => !env.EDGE_URL.includes(env.RELAY_LOCAL_EDGE), 'RELAY_LOCAL_EDGE names this edge: it must not also be in EDGE_URL'),
    ['RELAY_LOCAL_EDGE'],
  ),
)

export const loadRelayConfig = (env: Record<string, string | undefined>, { localEdge = false } = {}): RelayConfig =>
  localEdge ? parseEnv(ServeEnv, env) : parseEnv(RelayEnv, env)
