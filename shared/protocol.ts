/**
 * Wire names and limits, in one place. Everything that crosses a process boundary — the NOTIFY channel,
 * HTTP headers, SSE event names, default limits — is named here and imported elsewhere.
 */

/** The one NOTIFY channel. Its payload is the tenant id only: a nudge, never the data. */
export const CHANNEL = 'relay'

export const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
export const TOPIC_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/
/** A topic grant (in a token, or the live-tail page's filter): a topic, or a `prefix*` wildcard. */
export const TOPIC_GRANT_PATTERN = /^(?:[A-Za-z0-9_.:-]{1,128}|[A-Za-z0-9_.:-]{0,127}\*)$/

export const HEADERS = {
  signature: 'x-relay-signature',
  lastEventId: 'last-event-id',
  /** Worker → Durable Object: the subscription (JSON) sent with the room's WebSocket upgrade. Internal. */
  roomConnect: 'x-edge-relay-connect',
  /** Durable Object → Worker, instead of the upgrade: the room is full, connect to this shard of it (its index). Internal. */
  roomShard: 'x-edge-relay-shard',
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
  /** Subscriber counts per topic (opt-in with `presence=1`), at most one per PRESENCE_INTERVAL_MS per room. */
  presence: 'presence',
  /**
   * Stands in for an event larger than the edge accepts, with the event's own `id:` (its seq), so the sequence
   * stays gapless: `data` is an `UndeliverableMarker`. Fetch the event from your app if you need it.
   */
  oversize: 'oversize',
  /** As `oversize`, for an event the edge refused for another reason. */
  undeliverable: 'undeliverable',
} as const

/** The event names that stand in for an event the edge refused: they carry that event's seq as their `id:`. */
export const MARKER_EVENTS = [EVENTS.oversize, EVENTS.undeliverable] as const
export type MarkerEvent = (typeof MARKER_EVENTS)[number]

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
export const ROOM_SOCKET = { pause: '\u0000pause', more: 'more', live: '\u0000live' } as const

export const PATHS = {
  publish: '/internal/publish',
  /** `POST`, signed: the relay asks which set of rooms the edge serves (see HelloReply). */
  hello: '/internal/hello',
  /** `POST`: exchanges an app token (Authorization header) for a short-lived ticket for `?access_token=`. */
  tickets: '/v1/tickets',
  health: '/healthz',
  metrics: '/metrics',
} as const

/*
 * Fixed limits: what both ends of a wire must agree on, and bounds no deployment has needed to tune. What an
 * operator sets is in the configuration schemas (edge/config.ts, relay/config.ts; docs/configuration.md).
 */

/**
 * `retry:` sent first on every stream: how long EventSource waits before reconnecting, at the least. Each stream gets
 * RETRY_MS stretched by up to RETRY_JITTER (× 1 to × 1.5) at random (edge/room/stream.ts, jitteredRetryMs).
 */
export const RETRY_MS = 1_000
export const RETRY_JITTER = 0.5

/** Signed relay requests older or newer than this are refused. */
export const SIGNATURE_WINDOW_S = 300

/** Longest query string the edge reads (a ticket in `access_token` and a few topics fit easily). */
export const MAX_QUERY_BYTES = 4_096

/** Presence events are coalesced to at most one per this interval per room. */
export const PRESENCE_INTERVAL_MS = 1_000

/** A relay batch holds at most this many events. */
export const BATCH_EVENTS = 500

/** …and, past its first event, at most this many bytes of event data (a larger single event goes alone). */
export const BATCH_BYTES = 1024 * 1024

/**
 * The largest publish body an edge accepts, given the largest event it accepts: a batch's data (BATCH_BYTES, plus
 * the event that crosses it, up to `maxEventBytes`), each byte escaped to at most two in the body's JSON, and up to
 * 512 bytes of seq, topic and time around each of BATCH_EVENTS events. A body over it is refused as a whole
 * (413), which the relay answers by halving the batch, so the bound never stalls a tenant.
 */
export const maxPublishBytes = (maxEventBytes: number): number => 2 * (BATCH_BYTES + maxEventBytes) + 512 * BATCH_EVENTS
