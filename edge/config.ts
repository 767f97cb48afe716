import * as v from 'valibot'
import { acrossVars, hostVar, intVar, listVar, logLevelVar, parseEnv, secretVar } from '../shared/env.ts'

/**
 * The edge's variables, the same on Node, Deno and Workers (docs/configuration.md is their reference, and a test
 * keeps the two in step). Every default is here and nowhere else: the factories take the parsed settings whole.
 */
export const edgeVariables = {
  /** Node, Deno: the port to listen on (0: a free one). */
  PORT: intVar(0, 65535, 8787),
  /** Node, Deno: the address to listen on. */
  HOST: hostVar('0.0.0.0'),
  LOG_LEVEL: logLevelVar,
  /** Verifies the relay's signed requests. */
  RELAY_SECRET: secretVar(),
  /** HS256 app tokens. At least one of EDGE_JWT_SECRET, EDGE_JWKS_URL, EDGE_JWT_PUBLIC_KEY is required. */
  EDGE_JWT_SECRET: v.optional(secretVar()),
  /** RS256/ES256 app tokens against a JWKS (cached; refetched on an unknown kid). */
  EDGE_JWKS_URL: v.optional(v.pipe(v.string(), v.url('must be an http(s) URL'), v.regex(/^https?:\/\//, 'must be an http(s) URL'))),
  /** RS256/ES256 app tokens against one public key: SPKI PEM or a JWK (JSON). */
  EDGE_JWT_PUBLIC_KEY: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => /^\s*(?:\{|-----BEGIN PUBLIC KEY-----)/.test(s), 'must be SPKI PEM or a JWK'),
    ),
  ),
  /** When set, app tokens must carry this `iss` / `aud`. */
  EDGE_JWT_ISSUER: v.optional(v.string()),
  EDGE_JWT_AUDIENCE: v.optional(v.string()),
  /** Tickets are signed with a key derived from this, or from EDGE_JWT_SECRET when unset. */
  EDGE_TICKET_SECRET: v.optional(secretVar()),
  /** How long a ticket may be used to open a stream (the stream then lives as long as the app token). */
  EDGE_TICKET_TTL_S: intVar(1, 60, 60),
  /** `ticket`: ?access_token= accepts tickets only (app tokens go in a header); `any` accepts both. */
  EDGE_QUERY_TOKENS: v.optional(v.picklist(['any', 'ticket'], 'must be any or ticket'), 'any'),
  /** Browser origins allowed by CORS, comma-separated (e.g. https://app.example.com); none: no CORS headers. */
  EDGE_CORS_ORIGINS: v.optional(listVar, ''),
  /** Node: when set, GET /metrics needs `Authorization: Bearer <this>` (unset: /metrics is open, for a private port). */
  EDGE_METRICS_TOKEN: v.optional(secretVar()),
  /** Live streams per tenant, and per token subject (`sub`) within a tenant, on one edge instance (429 past them). */
  EDGE_MAX_CONNECTIONS_PER_TENANT: intVar(1, 10_000_000, 10_000),
  EDGE_MAX_CONNECTIONS_PER_SUBJECT: intVar(1, 10_000_000, 100),
  /** Topics one connection (or ticket) may ask for. */
  EDGE_MAX_TOPICS: intVar(1, 1024, 64),
  /**
   * The largest event the edge accepts from the relay; a larger one reaches subscribers as an `oversize` marker.
   * Keep it at least the database's relay.max_event_bytes. The publish body limit follows from it (maxPublishBytes).
   */
  EDGE_MAX_EVENT_BYTES: intVar(1024, 64 * 1024 * 1024, 1024 * 1024),
  /** Comment heartbeat on every stream. */
  HEARTBEAT_MS: intVar(1000, 300_000, 15_000),
  /** Events a room keeps for `Last-Event-ID` resume. */
  HISTORY_LIMIT: intVar(1, 10_000_000, 10_000),
  /** Bytes of frames a room keeps for resume, besides HISTORY_LIMIT events (the newest event is always kept). */
  HISTORY_MAX_BYTES: intVar(64 * 1024, 1 << 30, 16 * 1024 * 1024),
  /** A subscriber this many bytes behind is dropped as too slow (it resumes with Last-Event-ID). */
  SUBSCRIBER_QUEUE_BYTES: intVar(1024, 1 << 30, 4 * 1024 * 1024),
  /**
   * Seconds a durable room keeps events for resume: Durable Object rooms, and KV rooms on Deno (0: until
   * HISTORY_LIMIT pushes them out). Rooms in memory do not read it.
   */
  HISTORY_MAX_AGE_S: intVar(0, 365 * 86_400, 86_400),
  /** Deno: `memory` (rooms in this process) or `kv` (rooms shared through Deno KV by every instance: Deno Deploy). */
  EDGE_ROOMS: v.optional(v.picklist(['memory', 'kv'], 'must be memory or kv'), 'memory'),
  /** Deno with EDGE_ROOMS=kv: the KV database's path (unset: Deno's default, on Deno Deploy the app's database). */
  EDGE_KV_PATH: v.optional(v.pipe(v.string(), v.minLength(1))),
}

/** The Worker's: the edge's (it ignores EDGE_ROOMS and EDGE_KV_PATH: its rooms are Durable Objects), and its rooms' own. */
export const workersVariables = {
  ...edgeVariables,
  /**
   * Subscribers a tenant's room holds before new ones go to shard objects, each holding as many, fed by the room with every batch
   * (docs/cloudflare.md, Sharding). A Durable Object is one thread that sends to each socket in turn, and holds at most 32,768 of them.
   */
  ROOM_SHARD_SUBSCRIBERS: intVar(1, 32_768, 4_000),
}

type KeyVariables = { EDGE_JWT_SECRET?: string; EDGE_JWKS_URL?: string; EDGE_JWT_PUBLIC_KEY?: string; EDGE_TICKET_SECRET?: string }

/** Checks across variables, each reported under the variable to set, along with every other bad variable. */
const keyChecks = <T extends KeyVariables>() =>
  [
    acrossVars<T>(
      ['EDGE_JWT_SECRET', 'EDGE_JWKS_URL', 'EDGE_JWT_PUBLIC_KEY'],
      (e) => Boolean(e.EDGE_JWT_SECRET || e.EDGE_JWKS_URL || e.EDGE_JWT_PUBLIC_KEY),
      'EDGE_JWT_SECRET',
      'set EDGE_JWT_SECRET (HS256), EDGE_JWKS_URL or EDGE_JWT_PUBLIC_KEY (RS256/ES256) so that the edge can verify tokens',
    ),
    acrossVars<T>(
      ['EDGE_JWT_SECRET', 'EDGE_TICKET_SECRET'],
      (e) => Boolean(e.EDGE_JWT_SECRET || e.EDGE_TICKET_SECRET),
      'EDGE_TICKET_SECRET',
      'set EDGE_TICKET_SECRET: without EDGE_JWT_SECRET the edge has no key to sign tickets with',
    ),
  ] as const

const edgeObject = v.object(edgeVariables)
const workersObject = v.object(workersVariables)

/** The edge's configuration schema (Node, Deno). */
export const EdgeEnv = v.pipe(edgeObject, ...keyChecks<v.InferOutput<typeof edgeObject>>())
/** The Worker's: the edge's plus its rooms' variables (`wrangler.toml` [vars], `wrangler secret put`). */
export const WorkersEnv = v.pipe(workersObject, ...keyChecks<v.InferOutput<typeof workersObject>>())

/** The edge's complete settings: every variable, defaults applied. */
export type EdgeSettings = v.InferOutput<typeof EdgeEnv>
export type WorkersSettings = v.InferOutput<typeof WorkersEnv>

/**
 * The edge's settings from its environment (Node's process.env, Deno's Deno.env).
 * @throws ConfigError naming every bad variable
 */
export const loadEdgeEnv = (env: Readonly<Record<string, unknown>>): EdgeSettings => parseEnv(EdgeEnv, env)

/**
 * The Worker's settings from its bindings (the Worker and its Durable Objects read the same ones).
 * @throws ConfigError naming every bad variable
 */
export const loadWorkersEnv = (env: Readonly<Record<string, unknown>>): WorkersSettings => parseEnv(WorkersEnv, env)
