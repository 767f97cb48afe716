import * as v from 'valibot'
import { MAX_EVENT_BYTES, TENANT_PATTERN, TOPIC_PATTERN } from './protocol.ts'

export const TenantId = v.pipe(
  v.string(),
  v.regex(TENANT_PATTERN, 'tenant must match ^[A-Za-z0-9_-]{1,64}$'),
)
export type TenantId = v.InferOutput<typeof TenantId>

export const Topic = v.pipe(v.string(), v.regex(TOPIC_PATTERN, 'topic must match ^[A-Za-z0-9_.:-]{1,128}$'))
export type Topic = v.InferOutput<typeof Topic>

/** A topic grant in a token: a topic, or a `prefix*` wildcard. */
export const TopicGrant = v.pipe(
  v.string(),
  v.regex(/^(?:[A-Za-z0-9_.:-]{1,128}|[A-Za-z0-9_.:-]{0,127}\*)$/, 'a topic grant is a topic or prefix*'),
)

export const Seq = v.pipe(v.number(), v.safeInteger(), v.minValue(1))

/** One event as the relay posts it to the edge. */
export const WireEvent = v.object({
  seq: Seq,
  topic: Topic,
  data: v.unknown(),
  /** Commit time, ms since epoch. */
  ts: v.number(),
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
})
export type PublishBody = v.InferOutput<typeof PublishBody>

export const PublishReply = v.object({ tenant: TenantId, head: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) })
export type PublishReply = v.InferOutput<typeof PublishReply>

/** JWT claims the edge accepts (validated after the signature is verified). */
export const Claims = v.object({
  tenant: TenantId,
  topics: v.optional(v.pipe(v.array(TopicGrant), v.maxLength(256))),
  exp: v.number(),
  sub: v.optional(v.string()),
})
export type Claims = v.InferOutput<typeof Claims>

export const maxEventBytes = MAX_EVENT_BYTES
