/**
 * What a subscriber does with each message of a stream, as one pure reducer: which seq to resume after, which
 * events are new, when something went missing, and what the control events ask for. The browser client, the `tail`
 * CLI and the live-tail page all resume through it (`({ state, effects } = resume(state, message))`); each keeps
 * only its I/O (connecting, printing, calling back).
 */
import { EVENTS, MARKER_EVENTS, type MarkerEvent, type ReauthPayload, type ResetPayload, type UndeliverableMarker } from './protocol.ts'
import type { PresenceSnapshot } from './presence.ts'
import type { SseMessage } from './sse-parse.ts'

/** Where a subscriber stands in its tenant's sequence. */
export interface ResumeState {
  /**
   * The last seq seen (an event, a marker for one, or a reset's head): reconnect with it as the last event id.
   * Undefined before any, which asks for only what happens from now on.
   */
  readonly lastSeq: number | undefined
  /**
   * Report a jump in seq as a gap. Seqs count every topic of the tenant, so this is right only when the stream
   * carries every topic.
   */
  readonly detectGaps: boolean
}

/** What the caller does after a message, in order. */
export type ResumeEffect =
  /** Deliver a new event. `data` is its JSON text as it came (parse it, or pass it on unchanged). */
  | { type: 'event'; seq: number; topic: string; data: string }
  /** The edge could not carry event `seq`: fetch it from the app if needed. Its seq counts as seen, never as a gap. */
  | { type: 'undeliverable'; seq: number; event: MarkerEvent; marker: UndeliverableMarker }
  /** Seqs went missing (only when `detectGaps`): the app must refetch. Comes before the event that revealed it. */
  | { type: 'gap'; expected: number; got: number }
  /** The edge no longer holds what was missed: the app must refetch. The resume point has moved to `payload.head`. */
  | { type: 'reset'; payload: ResetPayload }
  /** The token expired: close this stream and reconnect at once, with a fresh token, after `lastSeq`. */
  | { type: 'reconnect'; reason?: string }
  /** Subscriber counts changed. */
  | { type: 'presence'; snapshot: PresenceSnapshot }
  /** A message that breaks the protocol (bad JSON, a wrong shape, a bad id) and was ignored: log it if you can. */
  | { type: 'malformed'; event: string; problem: string }

/** The state after one message, and what to do about it. */
export type ResumeStep = { state: ResumeState; effects: ResumeEffect[] }

/** Event names that carry no `id:`: they never move the resume point by their id. */
export const CONTROL_EVENTS = [EVENTS.reset, EVENTS.reauth, EVENTS.presence] as const

/**
 * Applies one SSE message to `state`. Never throws: a message that breaks the protocol is ignored with a
 * `malformed` effect, and `state` is returned unchanged unless the message moves the resume point.
 */
export const resume = (state: ResumeState, m: SseMessage): ResumeStep => {
  switch (m.event) {
    case EVENTS.reauth: {
      // The stream is over whatever the payload says: reconnecting is right even when its reason cannot be read.
      const payload = parse(m, isReauthPayload)
      const reconnect: ResumeEffect = { type: 'reconnect', ...(payload.ok ? { reason: payload.value.reason } : {}) }
      return { state, effects: payload.ok ? [reconnect] : [payload.malformed, reconnect] }
    }
    case EVENTS.presence: {
      const payload = parse(m, isPresenceSnapshot)
      return { state, effects: [payload.ok ? { type: 'presence', snapshot: payload.value } : payload.malformed] }
    }
    case EVENTS.reset: {
      // Without a readable head the resume point stays: with gap detection on, the next event still reveals the loss.
      const payload = parse(m, isResetPayload)
      if (!payload.ok) return { state, effects: [payload.malformed] }
      // The head may be lower than lastSeq (a room that lost its memory): resume after it all the same.
      return { state: { ...state, lastSeq: payload.value.head }, effects: [{ type: 'reset', payload: payload.value }] }
    }
  }
  if (m.id === undefined) return { state, effects: [] }
  const seq = /^\d+$/.test(m.id) ? Number(m.id) : NaN
  if (!Number.isSafeInteger(seq)) return { state, effects: [malformed(m.event, `id ${JSON.stringify(m.id)} is not a seq`)] }
  const last = state.lastSeq
  if (last !== undefined && seq <= last) return { state, effects: [] } // already seen: a resend across a reconnect
  const effects: ResumeEffect[] = []
  if (state.detectGaps && last !== undefined && seq > last + 1) effects.push({ type: 'gap', expected: last + 1, got: seq })
  effects.push(isMarker(m.event) ? markerEffect(seq, m.event, m) : { type: 'event', seq, topic: m.event, data: m.data })
  return { state: { ...state, lastSeq: seq }, effects }
}

const isMarker = (event: string): event is MarkerEvent => (MARKER_EVENTS as readonly string[]).includes(event)

/** A marker whose data cannot be read still stands for its seq: counting it keeps the sequence gapless. */
const markerEffect = (seq: number, event: MarkerEvent, m: SseMessage): ResumeEffect => {
  const payload = parse(m, isUndeliverableMarker)
  return payload.ok ? { type: 'undeliverable', seq, event, marker: payload.value } : payload.malformed
}

const malformed = (event: string, problem: string): ResumeEffect => ({ type: 'malformed', event, problem })

type Parsed<T> = { ok: true; value: T } | { ok: false; malformed: ResumeEffect }

/**
 * Parses and checks a control payload. Hand-written guards rather than a schema library: the browser client and
 * the page load these modules as they are, with no dependencies. The parsed object is kept as it came (extra
 * fields included), so what callers pass on is what the edge sent.
 */
const parse = <T>(m: SseMessage, is: (x: unknown) => x is T): Parsed<T> => {
  let value: unknown
  try {
    value = JSON.parse(m.data)
  } catch (err) {
    return { ok: false, malformed: malformed(m.event, `data is not JSON (${(err as Error).message})`) }
  }
  return is(value) ? { ok: true, value } : { ok: false, malformed: malformed(m.event, `unexpected data ${m.data.slice(0, 200)}`) }
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isSeq = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0

const isResetPayload = (x: unknown): x is ResetPayload => isRecord(x) && isSeq(x.head) && (x.first === null || isSeq(x.first))

const isReauthPayload = (x: unknown): x is ReauthPayload => isRecord(x) && typeof x.reason === 'string'

const isUndeliverableMarker = (x: unknown): x is UndeliverableMarker =>
  isRecord(x) && typeof x.topic === 'string' && typeof x.bytes === 'number' && typeof x.reason === 'string'

const isPresenceSnapshot = (x: unknown): x is PresenceSnapshot =>
  isRecord(x) &&
  typeof x.tenant === 'string' &&
  typeof x.subscribers === 'number' &&
  isRecord(x.topics) &&
  Object.values(x.topics).every((n) => typeof n === 'number')
