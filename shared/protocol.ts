/**
 * Wire names and limits, in one place. Everything that crosses a process boundary — the NOTIFY channel,
 * HTTP headers, SSE event names, default limits — is named here and imported elsewhere.
 */

/** The one NOTIFY channel. Its payload is the tenant id only: a nudge, never the data. */
export const CHANNEL = 'relay'

export const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
export const TOPIC_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/

/** Default maximum size of one event's JSON data (bytes); the SQL side enforces it too. */
export const MAX_EVENT_BYTES = 64 * 1024

export const HEADERS = {
  signature: 'x-relay-signature',
  lastEventId: 'last-event-id',
  /** Worker → Durable Object: the subscription (JSON) sent with the room's WebSocket upgrade. Internal. */
  roomConnect: 'x-edge-relay-connect',
} as const

export const QUERY = {
  topics: 'topics',
  accessToken: 'access_token',
  lastEventId: 'last_event_id',
  /** `presence=1`: also receive `event: presence` when the room's subscriber counts change. */
  presence: 'presence',
} as const

/** Cookie a browser may carry the token in. */
export const TOKEN_COOKIE = 'edge_relay_token'

/**
 * JOSE `typ` header of the tickets the edge signs. Tickets are signed with a key derived for them alone, so an app
 * token can never pass as a ticket nor a ticket as an app token (a leaked ticket cannot mint more tickets).
 */
export const TICKET_TYP = 'edge-relay-ticket+jwt'

/** SSE event names that are not topics. */
export const EVENTS = {
  reset: 'reset',
  reauth: 'reauth',
  /** Subscriber counts per topic (opt-in with `presence=1`), at most one per `presenceIntervalMs` per room. */
  presence: 'presence',
  /**
   * Stands in for an event larger than the edge accepts, with the event's own `id:` (its seq), so the sequence
   * stays gapless: `data` is an `UndeliverableMarker`. Fetch the event from your app if you need it.
   */
  oversize: 'oversize',
  /** As `oversize`, for an event the edge refused for another reason. */
  undeliverable: 'undeliverable',
} as const

/** The `data` of an `event: reset`: the room's head, and the oldest seq it still holds (null when none). */
export interface ResetPayload {
  head: number
  first: number | null
}

/** The `data` of an `event: reauth`: why the stream ended (fetch a new token, then resume). */
export interface ReauthPayload {
  reason: string
}

/** The `data` of an `event: oversize` / `event: undeliverable` marker. */
export interface UndeliverableMarker {
  /** The topic of the event it stands for. */
  topic: string
  /** The size of the event's JSON data, in bytes. */
  bytes: number
  /** Why the edge refused it. */
  reason: string
}

/**
 * Messages between a Worker and its tenant's room object on the subscriber's WebSocket, besides SSE text. A replay
 * goes out in rounds: the room ends each round but the last with `pause`, the Worker answers `more` once its
 * browser has read it, and the room ends the last round with `live`. Internal: never reaches a browser.
 */
export const ROOM_SOCKET = {
  pause: '\u0000pause',
  more: 'more',
  live: '\u0000live',
} as const

export const PATHS = {
  publish: '/internal/publish',
  /** `POST`, signed: the relay asks which set of rooms the edge serves (see HelloReply). */
  hello: '/internal/hello',
  /** `POST`: exchanges an app token (Authorization header) for a short-lived ticket for `?access_token=`. */
  tickets: '/v1/tickets',
  health: '/healthz',
  metrics: '/metrics',
} as const

/** A relay batch holds at most this many events. */
export const BATCH_EVENTS = 500

/**
 * …and, past its first event, at most this many bytes of event data (a larger single event goes alone). Well under
 * the edge's maxPublishBytes, which must also hold JSON string escaping (at worst ~2x for quote-heavy data).
 */
export const BATCH_BYTES = 1024 * 1024

export const DEFAULTS = {
  /** Comment heartbeat interval on every SSE stream. */
  heartbeatMs: 15_000,
  /** `retry:` sent first on every stream: how long EventSource waits before reconnecting. */
  retryMs: 1_000,
  /** Events a room keeps for `Last-Event-ID` resume. */
  historyLimit: 10_000,
  /** Signed publish requests older or newer than this are refused. */
  signatureWindowS: 300,
  /** Largest relay → edge publish body. */
  maxPublishBytes: 8 * 1024 * 1024,
  /** Per-subscriber queue before a slow subscriber is dropped. */
  subscriberQueueEvents: 1_000,
  subscriberQueueBytes: 4 * 1024 * 1024,
  /** Bytes of frames a room keeps for resume (the count bound, historyLimit, applies too). */
  historyBytes: 16 * 1024 * 1024,
  /** Presence events are coalesced to at most one per this interval per room. */
  presenceIntervalMs: 1_000,
  /** Ticket lifetime: how long a ticket may be used to open a stream (the stream then lives as long as the app token). */
  ticketTtlS: 60,
  /** Allowed clock skew for a token's exp/nbf/iat. */
  clockSkewS: 30,
  /** Live streams per tenant, and per token subject (`sub`) within a tenant, on one edge instance. */
  maxConnectionsPerTenant: 10_000,
  maxConnectionsPerSubject: 100,
  /** Topics one connection (or ticket) may ask for. */
  maxTopics: 64,
  /** Longest query string accepted (a ticket in `access_token` fits easily). */
  maxQueryBytes: 4_096,
  /** Largest single event the edge accepts from the relay (keep it ≥ the database's relay.max_event_bytes). */
  maxEdgeEventBytes: 1024 * 1024,
  /** Relay signatures remembered to refuse replays within the signature window. */
  replayCacheEntries: 100_000,
  /** JWKS: refetch at most this often on an unknown kid, and at least this often in any case. */
  jwksCooldownS: 30,
  jwksMaxAgeS: 600,
} as const
