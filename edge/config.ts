import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { DEFAULTS } from '../shared/protocol.ts'
import { intVar, parseEnv, secretVar } from '../shared/env.ts'
import type { EdgeConfig } from './app.ts'
import type { AuthOptions } from './auth.ts'

const optional = <S extends v.GenericSchema<string, unknown>>(schema: S) =>
  // An empty variable means unset (docker-compose and CI often pass VAR= for "not configured").
  v.pipe(v.optional(v.string()), v.transform((s) => (s === '' ? undefined : s)), v.optional(schema))

const list = v.pipe(
  v.string(),
  v.transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
)

/** The edge's variables (a plain object schema, so that platforms can extend it with their own). */
export const EdgeEnv = v.object({
    PORT: intVar(0, 65535, 8787),
    /** HS256 app tokens. At least one of EDGE_JWT_SECRET, EDGE_JWKS_URL, EDGE_JWT_PUBLIC_KEY is required. */
    EDGE_JWT_SECRET: optional(secretVar('EDGE_JWT_SECRET')),
    /** RS256/ES256 app tokens against a JWKS (cached; refetched on an unknown kid). */
    EDGE_JWKS_URL: optional(v.pipe(v.string(), v.url('EDGE_JWKS_URL must be a URL'), v.regex(/^https?:\/\//, 'EDGE_JWKS_URL must be http(s)'))),
    /** RS256/ES256 app tokens against one public key: SPKI PEM or a JWK (JSON). */
    EDGE_JWT_PUBLIC_KEY: optional(
      v.pipe(v.string(), v.check((s) => /^\s*(?:\{|-----BEGIN PUBLIC KEY-----)/.test(s), 'EDGE_JWT_PUBLIC_KEY must be SPKI PEM or a JWK')),
    ),
    /** When set, app tokens must carry this `iss` / `aud`. */
    EDGE_JWT_ISSUER: optional(v.string()),
    EDGE_JWT_AUDIENCE: optional(v.string()),
    EDGE_CLOCK_SKEW_S: intVar(0, 300, DEFAULTS.clockSkewS),
    EDGE_JWKS_COOLDOWN_S: intVar(0, 3600, DEFAULTS.jwksCooldownS),
    EDGE_JWKS_MAX_AGE_S: intVar(1, 86_400, DEFAULTS.jwksMaxAgeS),
    /** Tickets are signed with a key derived from this, or from EDGE_JWT_SECRET when unset. */
    EDGE_TICKET_SECRET: optional(secretVar('EDGE_TICKET_SECRET')),
    EDGE_TICKET_TTL_S: intVar(1, 60, DEFAULTS.ticketTtlS),
    /** `ticket`: ?access_token= accepts tickets only (app tokens go in a header); `any` (default) accepts both. */
    EDGE_QUERY_TOKENS: v.optional(v.picklist(['any', 'ticket'], 'EDGE_QUERY_TOKENS must be any or ticket'), 'any'),
    EDGE_MAX_CONNECTIONS_PER_TENANT: intVar(1, 10_000_000, DEFAULTS.maxConnectionsPerTenant),
    EDGE_MAX_CONNECTIONS_PER_SUBJECT: intVar(1, 10_000_000, DEFAULTS.maxConnectionsPerSubject),
    EDGE_MAX_TOPICS: intVar(1, 1024, DEFAULTS.maxTopics),
    EDGE_MAX_QUERY_BYTES: intVar(256, 65_536, DEFAULTS.maxQueryBytes),
    EDGE_MAX_EVENT_BYTES: intVar(1024, 64 * 1024 * 1024, DEFAULTS.maxEdgeEventBytes),
    /** Largest relay → edge publish body. */
    EDGE_MAX_PUBLISH_BYTES: intVar(1024, 256 * 1024 * 1024, DEFAULTS.maxPublishBytes),
    /** Browser origins allowed by CORS, comma-separated (e.g. https://app.example.com). */
    EDGE_CORS_ORIGINS: optional(list),
    /** Node: when set, GET /metrics needs `Authorization: Bearer <this>` (unset: /metrics is open, for a private port). */
    EDGE_METRICS_TOKEN: optional(secretVar('EDGE_METRICS_TOKEN')),
    RELAY_SECRET: secretVar('RELAY_SECRET'),
    HEARTBEAT_MS: intVar(1000, 300_000, DEFAULTS.heartbeatMs),
    RETRY_MS: intVar(0, 600_000, DEFAULTS.retryMs),
    HISTORY_LIMIT: intVar(1, 10_000_000, DEFAULTS.historyLimit),
    /** Bytes of frames a room keeps for resume, besides HISTORY_LIMIT events (the newest event is always kept). */
    HISTORY_MAX_BYTES: intVar(64 * 1024, 1 << 30, DEFAULTS.historyBytes),
    /** A subscriber this many frames or bytes behind is dropped as too slow (it resumes with Last-Event-ID). */
    SUBSCRIBER_QUEUE_EVENTS: intVar(1, 10_000_000, DEFAULTS.subscriberQueueEvents),
    SUBSCRIBER_QUEUE_BYTES: intVar(1024, 1 << 30, DEFAULTS.subscriberQueueBytes),
})

/**
 * Checks across variables, after parsing. A platform that extends EdgeEnv with its own variables calls it too.
 * @throws RelayError CONFIG_INVALID saying what to set
 */
export const checkEdgeEnv = <E extends { EDGE_JWT_SECRET?: string; EDGE_JWKS_URL?: string; EDGE_JWT_PUBLIC_KEY?: string; EDGE_TICKET_SECRET?: string }>(e: E): E => {
  if (!e.EDGE_JWT_SECRET && !e.EDGE_JWKS_URL && !e.EDGE_JWT_PUBLIC_KEY)
    throw new RelayError('CONFIG_INVALID', 'set EDGE_JWT_SECRET (HS256), EDGE_JWKS_URL or EDGE_JWT_PUBLIC_KEY (RS256/ES256) so that the edge can verify tokens')
  if (!e.EDGE_JWT_SECRET && !e.EDGE_TICKET_SECRET)
    throw new RelayError('CONFIG_INVALID', 'set EDGE_TICKET_SECRET: without EDGE_JWT_SECRET the edge has no key to sign tickets with')
  return e
}
export type EdgeEnv = v.InferOutput<typeof EdgeEnv>

/** Edge settings from env (Node, Deno and Workers bindings alike). */
export const loadEdgeEnv = (env: Record<string, string | undefined>): EdgeEnv => checkEdgeEnv(parseEnv(EdgeEnv, env))

const RoomEnv = v.object({
  HISTORY_LIMIT: intVar(1, 10_000_000, DEFAULTS.historyLimit),
  HISTORY_MAX_BYTES: intVar(64 * 1024, 1 << 30, DEFAULTS.historyBytes),
  /** Seconds a Durable Object room keeps events for resume (0 = until HISTORY_LIMIT pushes them out). */
  HISTORY_MAX_AGE_S: intVar(0, 365 * 86_400, 86_400),
})
export type RoomEnv = v.InferOutput<typeof RoomEnv>

/** A Durable Object room's settings from its bindings (it needs no secrets). */
export const loadRoomEnv = (env: Record<string, string | undefined>): RoomEnv => parseEnv(RoomEnv, env)

const WorkersEnv = v.object({ ...EdgeEnv.entries, ...RoomEnv.entries })
export type WorkersEnv = v.InferOutput<typeof WorkersEnv>

/** The Worker's settings from its vars and secrets (`wrangler.toml` [vars], `wrangler secret put`). */
export const loadWorkersEnv = (env: Record<string, string | undefined>): WorkersEnv => checkEdgeEnv(parseEnv(WorkersEnv, env))

/** What createAuth needs, from the env. */
export const authOptions = (env: EdgeEnv): AuthOptions => ({
  ...(env.EDGE_JWT_SECRET ? { jwtSecret: env.EDGE_JWT_SECRET } : {}),
  ...(env.EDGE_JWKS_URL ? { jwksUrl: env.EDGE_JWKS_URL } : {}),
  ...(env.EDGE_JWT_PUBLIC_KEY ? { publicKey: env.EDGE_JWT_PUBLIC_KEY } : {}),
  ...(env.EDGE_JWT_ISSUER ? { issuer: env.EDGE_JWT_ISSUER } : {}),
  ...(env.EDGE_JWT_AUDIENCE ? { audience: env.EDGE_JWT_AUDIENCE } : {}),
  ...(env.EDGE_TICKET_SECRET ? { ticketSecret: env.EDGE_TICKET_SECRET } : {}),
  clockToleranceS: env.EDGE_CLOCK_SKEW_S,
  jwksCooldownS: env.EDGE_JWKS_COOLDOWN_S,
  jwksMaxAgeS: env.EDGE_JWKS_MAX_AGE_S,
  ticketTtlS: env.EDGE_TICKET_TTL_S,
})

/** What rooms in memory (Node, Deno) need, from the env. */
export const memoryRoomsSettings = (env: EdgeEnv) => ({
  historyLimit: env.HISTORY_LIMIT,
  historyBytes: env.HISTORY_MAX_BYTES,
  heartbeatMs: env.HEARTBEAT_MS,
  queue: { bytes: env.SUBSCRIBER_QUEUE_BYTES, events: env.SUBSCRIBER_QUEUE_EVENTS },
})

/** The app's limits and secrets, from the env. */
export const edgeConfig = (env: EdgeEnv): EdgeConfig => ({
  relaySecret: env.RELAY_SECRET,
  retryMs: env.RETRY_MS,
  maxTopics: env.EDGE_MAX_TOPICS,
  maxConnectionsPerTenant: env.EDGE_MAX_CONNECTIONS_PER_TENANT,
  maxConnectionsPerSubject: env.EDGE_MAX_CONNECTIONS_PER_SUBJECT,
  maxQueryBytes: env.EDGE_MAX_QUERY_BYTES,
  maxEventBytes: env.EDGE_MAX_EVENT_BYTES,
  maxPublishBytes: env.EDGE_MAX_PUBLISH_BYTES,
  ...(env.EDGE_CORS_ORIGINS ? { corsOrigins: env.EDGE_CORS_ORIGINS } : {}),
  queryTicketsOnly: env.EDGE_QUERY_TOKENS === 'ticket',
})
