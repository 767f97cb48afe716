import * as v from 'valibot'
import { acrossVars, hostVar, intVar, logLevelVar, parseEnv, secretVar, splitList } from '../shared/env.ts'

const edgeList = v.pipe(
  v.string('required (the edge base URL, e.g. http://127.0.0.1:8787)'),
  v.transform((s) =>
    splitList(s)
      .map((u) => u.replace(/\/+$/, ''))
      .filter(Boolean),
  ),
  v.check((us) => us.every((u) => /^https?:\/\/[^\s]+$/.test(u)), 'every entry must be an http(s) URL'),
)

/**
 * The relay's variables (docs/configuration.md is their reference, and a test keeps the two in step). Every default
 * is here.
 */
export const relayVariables = {
  DATABASE_URL: v.pipe(
    v.string('required (postgres://user:password@host:5432/db)'),
    v.trim(),
    v.url('must be a URL'),
    v.regex(/^postgres(?:ql)?:\/\//, 'must be a postgres:// URL'),
  ),
  /** One edge URL, or several separated by commas (each gets its own cursors). */
  EDGE_URL: v.pipe(edgeList, v.minLength(1, 'lists no URL')),
  /**
   * With an edge in the relay's own process (`npm run serve`, `npm start`): the name its cursors are kept under. A
   * leader/standby pair of serve processes that post to each other names each local edge by the URL the other
   * lists in EDGE_URL, so that both relays keep one cursor per edge.
   */
  RELAY_LOCAL_EDGE: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\S{1,200}$/, 'must be one word or URL')), 'local'),
  /** Signs every request to the edges. */
  RELAY_SECRET: secretVar(),
  /** The relay's /healthz and /metrics. */
  RELAY_PORT: intVar(0, 65535, 8788),
  RELAY_HOST: hostVar('127.0.0.1'),
  LOG_LEVEL: logLevelVar,
  /**
   * `notify`: one LISTEN connection, NOTIFY nudges. `poll`: no LISTEN; every 5 ms the relay reads the heads that
   * changed (relay/poller.ts; pair it with `alter database … set relay.notify = 'off'`).
   */
  RELAY_MODE: v.optional(v.picklist(['notify', 'poll'], 'must be notify or poll'), 'notify'),
  /**
   * The sweep, the safety net in both modes: every tenant whose head is past an edge's cursor is caught up, each
   * edge is asked whether it restarted, lag is sampled, and every 12th sweep retention runs.
   */
  RELAY_SWEEP_MS: intVar(10, 3_600_000, 5_000),
  /** Retention: events older than this many seconds are pruned once every edge has them (0 = no age limit). */
  RELAY_RETENTION_AGE_S: intVar(0, 10 * 365 * 86_400, 7 * 86_400),
  /** Retention: at most this many newest events kept per tenant once every edge has them (0 = no count limit). */
  RELAY_RETENTION_COUNT: intVar(0, 1_000_000_000, 0),
}

const relayObject = v.object(relayVariables)
const serveObject = v.object({ ...relayVariables, EDGE_URL: v.optional(edgeList, '') })

/** `npm run relay`'s schema. */
export const RelayEnv = relayObject

/** With an edge in this process (`npm run serve`), EDGE_URL is optional: it lists only the other edges. */
export const ServeEnv = v.pipe(
  serveObject,
  // Two deliverers under one cursor name would move each other's cursors.
  acrossVars<v.InferOutput<typeof serveObject>>(
    ['EDGE_URL', 'RELAY_LOCAL_EDGE'],
    (e) => !e.EDGE_URL?.includes(e.RELAY_LOCAL_EDGE ?? ''),
    'RELAY_LOCAL_EDGE',
    'RELAY_LOCAL_EDGE names this edge: it must not also be in EDGE_URL',
  ),
)

/** The relay's complete settings: every variable, defaults applied. */
export type RelayConfig = v.InferOutput<typeof RelayEnv>

/**
 * The relay's settings from its environment; `localEdge` when an edge runs in the same process (EDGE_URL optional).
 * @throws ConfigError naming every bad variable
 */
export const loadRelayConfig = (env: Readonly<Record<string, unknown>>, { localEdge = false } = {}): RelayConfig =>
  localEdge ? parseEnv(ServeEnv, env) : parseEnv(RelayEnv, env)
