import * as v from 'valibot'
import { MARKER_EVENTS, TENANT_PATTERN, TOPIC_GRANT_PATTERN, TOPIC_PATTERN } from './protocol.ts'

export const TenantId = v.pipe(v.string(), v.regex(TENANT_PATTERN, 'tenant must match ^[A-Za-z0-9_-]{1,64}$'))
export type TenantId = v.InferOutput<typeof TenantId>

export const Topic = v.pipe(v.string(), v.regex(TOPIC_PATTERN, 'topic must match ^[A-Za-z0-9_.:-]{1,128}$'))
export type Topic = v.InferOutput<typeof Topic>

/** A topic grant in a token: a topic, or a `prefix*` wildcard. */
export const TopicGrant = v.pipe(v.string(), v.regex(TOPIC_GRANT_PATTERN, 'a topic grant is a topic or prefix*'))

export const Seq = v.pipe(v.number(), v.safeInteger(), v.minValue(1))

/**
 * An event's data as the JSON text PostgreSQL stores (`data::text`), carried as a string and never parsed on the
 * way: 64-bit ids, exact decimals and deep nesting reach the SSE `data:` line as committed. One line, because SSE
 * frames it as one `data:` line (jsonb's text form never holds a raw newline).
 */
export const EventData = v.pipe(
  v.string(),
  v.check((s) => !/[\r\n]/.test(s), 'event data must be JSON text on one line'),
)

/** One event as the relay posts it to the edge. */
export const WireEvent = v.object({
  seq: Seq,
  /** The event's topic: what subscribers filter on (a marker keeps it, so it reaches exactly who the event would). */
  topic: Topic,
  data: EventData,
  /** Commit time, ms since epoch. */
  ts: v.number(),
  /**
   * Set on a marker that stands in for an event the edge refused (too large, invalid): the SSE `event:` name, with
   * `data` an `UndeliverableMarker`. The seq stays, so clients keep a gapless sequence.
   */
  event: v.optional(v.picklist(MARKER_EVENTS)),
})
export type WireEvent = v.InferOutput<typeof WireEvent>

/** Body of `POST /internal/publish`. */
export const PublishBody = v.object({
  tenant: TenantId,
  events: v.pipe(v.array(WireEvent), v.maxLength(10_000)),
  /**
   * The outbox holds nothing older than `events[0]` (retention pruned it): a room whose head is further behind
   * accepts this batch as its new start instead of asking for a resend.
   */
  rebase: v.optional(v.boolean()),
  /**
   * Unique per attempt, so that each attempt has its own signature: the edge refuses a replayed signature, and a
   * retry of the same batch must not look like one. The room ignores it (publish is idempotent by seq).
   */
  nonce: v.optional(v.pipe(v.string(), v.maxLength(64))),
})
export type PublishBody = v.InferOutput<typeof PublishBody>

export const PublishReply = v.object({ tenant: TenantId, head: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) })
export type PublishReply = v.InferOutput<typeof PublishReply>

/**
 * Body of `POST /internal/hello` (signed like a publish), and its answer: which set of rooms the edge serves. Rooms
 * in memory get a new `instance` each start (they start empty); durable rooms keep one. The relay asks every sweep
 * and, when the instance changed, checks each tenant's room against its cursor and refills what was lost.
 */
export const HelloBody = v.object({ nonce: v.optional(v.pipe(v.string(), v.maxLength(64))) })
export const HelloReply = v.object({ instance: v.pipe(v.string(), v.minLength(1), v.maxLength(128)) })
export type HelloReply = v.InferOutput<typeof HelloReply>

const NumericDate = v.pipe(v.number(), v.finite())

/** JWT claims the edge accepts (validated after the signature is verified; jose has checked exp/nbf/iss/aud). */
export const Claims = v.object({
  tenant: TenantId,
  topics: v.optional(v.pipe(v.array(TopicGrant), v.maxLength(256))),
  exp: NumericDate,
  nbf: v.optional(NumericDate),
  iat: v.optional(NumericDate),
  sub: v.optional(v.pipe(v.string(), v.maxLength(256))),
})
export type Claims = v.InferOutput<typeof Claims>

/** A ticket's claims: an app token's, narrowed, plus `sexp` — when a stream opened with it must end (the app token's exp). */
export const TicketClaims = v.object({ ...Claims.entries, sexp: NumericDate })
export type TicketClaims = v.InferOutput<typeof TicketClaims>

/** Body of `POST /v1/tickets` (all optional: `{}` asks for everything the app token grants). */
export const TicketRequest = v.object({
  /** Must equal the token's tenant when given (a typo fails loudly instead of minting a useless ticket). */
  tenant: v.optional(TenantId),
  /** The subset of the token's topics the ticket is for (topics or `prefix*` grants). */
  topics: v.optional(v.pipe(v.array(TopicGrant), v.minLength(1, 'ask for at least one topic, or omit topics'), v.maxLength(256))),
})
export type TicketRequest = v.InferOutput<typeof TicketRequest>

export const TicketReply = v.object({
  ticket: v.string(),
  tenant: TenantId,
  topics: v.optional(v.array(TopicGrant)),
  /** Last moment the ticket can open a stream (ms since epoch). */
  expiresAt: v.number(),
  /** When a stream opened with it ends with `event: reauth` (ms since epoch). */
  streamExpiresAt: v.number(),
})
export type TicketReply = v.InferOutput<typeof TicketReply>
