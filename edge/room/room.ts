import { EVENTS, PRESENCE_INTERVAL_MS, type ResetPayload } from '../../shared/protocol.ts'
import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply, TenantId } from '../../shared/schema.ts'
import { encodeControl, HEARTBEAT } from '../../shared/sse.ts'
import { type History, type StoredEvent, storedEvent } from './history.ts'
import { PresenceCounter, presenceKeys } from './presence.ts'
import { topicMatcher, type TopicFilter } from './topics.ts'

/** Why a stream ends: it fell behind (cut it now), the server ends it (let it read what is queued), its token expired. */
export type CloseReason = 'slow' | 'end' | 'reauth'

/** Where a room writes one subscriber's bytes: a Node response, a ReadableStream, a WebSocket to a Worker. */
export interface Sink {
  /** Queues bytes; false = queue full (the room drops it). `forced` is bounded elsewhere: replay rounds, `retry:`, the last `reauth`. */
  write(chunk: Uint8Array, forced?: boolean): boolean
  /** Ends the stream; on 'slow' at once, discarding what is queued (the client resumes from its Last-Event-ID). */
  close(reason: CloseReason): void
  /** Bytes written and not yet taken by the connection. */
  readonly backlog: number
  /** Calls `fn` once, when the connection has taken what was written (a replay goes on from there). */
  whenDrained(fn: () => void): void
  /** Told where a replaying subscriber stands after each round (a Durable Object keeps it across hibernation). */
  checkpoint?(position: Position): void
}

/** Where a subscriber stands: the highest seq it has received or declared seen, and whether it is still replaying. */
export interface Position {
  after: number
  catchingUp: boolean
}

export interface SubscribeOptions {
  topics: TopicFilter
  /** Resume after this seq; undefined = live only. */
  lastEventId?: number
  /** Also receive `event: presence` when counts change (and once on joining). */
  presence?: boolean
}

export interface RoomOptions {
  history: History
  /** Told when a subscriber is dropped for falling behind, with the bytes it had queued (logs). */
  onSlowDrop?: (tenant: string, queuedBytes: number) => void
}

/** A replay goes out in rounds of this many bytes (or REPLAY_ROUND_EVENTS frames): a far resume holds one round, not a history copy. */
export const REPLAY_ROUND_BYTES = 64 * 1024
export const REPLAY_ROUND_EVENTS = 256

interface Subscriber extends Position {
  sink: Sink
  accepts: (topic: string) => boolean
  keys: string[] // presence keys it counts under
  /** Receives presence events; `grants` limits which topics they name. */
  presence: boolean
  grants: readonly string[] | undefined
}

/** What a resume request gets, decided from the history bounds alone (pure; tested without a network). */
export type ResumePlan = { kind: 'live' } | { kind: 'replay'; after: number } | { kind: 'reset' }

/** `first`: oldest seq held (undefined when none); `head`: highest seq held or acknowledged (0 when the room knows nothing). */
export const planResume = (lastEventId: number | undefined, first: number | undefined, head: number): ResumePlan => {
  if (lastEventId === undefined) return { kind: 'live' }
  if (lastEventId >= head) return { kind: 'replay', after: lastEventId } // nothing to replay; skip seqs ≤ it later
  if (first === undefined || lastEventId < first - 1) return { kind: 'reset' }
  return { kind: 'replay', after: lastEventId }
}

/**
 * What a room takes of a relay batch, given its head: the seqs it does not hold yet, unless they leave a gap and the
 * batch is no `rebase` (then nothing: the reply's head tells the relay where to resend from). Every room's rule.
 */
export const takeable = <E extends { seq: number }>(all: readonly E[], head: number, rebase: boolean) => {
  const fresh = all.filter((e) => e.seq > head)
  const start = fresh[0]?.seq
  if (start === undefined || (start !== head + 1 && !rebase)) return undefined
  return { fresh, start, gap: start !== head + 1 }
}

const resetFrame = (payload: ResetPayload) => encodeControl(EVENTS.reset, payload)

/**
 * A tenant's room: a history for resume and live subscribers, on any runtime (the history and the sinks are where runtimes differ).
 * Synchronous, so replay and the switch to live happen without a gap or a duplicate.
 */
export class Room {
  private readonly subscribers = new Set<Subscriber>()
  private readonly history: History
  slowDropped = 0 // subscribers dropped because they could not keep up
  delivered = 0 // event frames written to subscribers (metrics)
  private readonly counter = new PresenceCounter(() => this.broadcastPresence(), PRESENCE_INTERVAL_MS)
  private lastPresence = ''

  constructor(
    readonly tenant: TenantId,
    private readonly options: RoomOptions,
  ) {
    this.history = options.history
  }

  get head(): number {
    return this.history.head
  }

  get first(): number | undefined {
    return this.history.first
  }

  get size(): number {
    return this.subscribers.size
  }

  /** Events after `after`, oldest first (diagnostics and tests). */
  since(after: number): StoredEvent[] {
    return this.history.since(after, Number.MAX_SAFE_INTEGER)
  }

  /** Subscriber counts per topic, as a token with `grants` may see them. */
  presence(grants?: readonly string[]): PresenceSnapshot {
    return this.counter.snapshot(this.tenant, grants)
  }

  /** A relay batch: held seqs are ignored; a gap is refused (the reply's head says where to resend from) unless `rebase`. */
  publish(body: PublishBody): PublishReply {
    const head = this.apply(body.events, body.rebase === true, storedEvent)
    return { tenant: this.tenant, head }
  }

  /**
   * As publish, for events framed elsewhere (a copy of a history shared by several processes: KV rooms). Returns
   * the head.
   */
  publishFramed(events: readonly StoredEvent[], rebase: boolean): number {
    return this.apply(events, rebase, (e) => e)
  }

  /** publish's rules; `store` frames only the events the room takes. */
  private apply<E extends { seq: number }>(all: readonly E[], rebase: boolean, store: (e: E) => StoredEvent): number {
    const take = takeable(all, this.history.head, rebase)
    if (!take) return this.history.head
    const { start, gap } = take
    const events = take.fresh.map(store)
    // A gap inside the history would be a silent loss on resume: a rebase starts it over at `start`.
    this.history.append(events, gap)
    if (gap) {
      // Subscribers positioned before the gap would miss events silently: tell them to refetch instead.
      const reset = resetFrame({ head: start - 1, first: start })
      for (const s of this.subscribers)
        if (!s.catchingUp && s.after > 0 && s.after < start - 1) {
          s.after = start - 1
          if (!s.sink.write(reset)) this.drop(s)
        }
    }
    for (const e of events) for (const s of this.subscribers) if (!s.catchingUp) this.deliver(s, e)
    return this.history.head
  }

  /**
   * Replays what the subscriber missed (or tells it to reset), then it is live; `restore` puts it back where it stood (a
   * Durable Object waking from hibernation). Returns the function that removes it.
   */
  subscribe(options: SubscribeOptions, sink: Sink, restore?: Position): () => void {
    const s: Subscriber = {
      sink,
      accepts: topicMatcher(options.topics),
      after: this.head,
      catchingUp: false,
      keys: presenceKeys(options.topics),
      presence: options.presence === true,
      grants: options.topics.grants,
    }
    if (restore) Object.assign(s, restore)
    else {
      const plan = planResume(options.lastEventId, this.first, this.head)
      if (plan.kind === 'reset') sink.write(resetFrame({ head: this.head, first: this.first ?? null }))
      else if (plan.kind === 'replay') Object.assign(s, { after: plan.after, catchingUp: plan.after < this.head })
      sink.checkpoint?.(s)
    }
    this.subscribers.add(s)
    this.counter.join(s.keys)
    if (!restore && s.presence && !sink.write(encodeControl(EVENTS.presence, this.presence(s.grants)))) this.drop(s)
    else if (s.catchingUp && restore) sink.whenDrained(() => this.catchUp(s))
    else if (s.catchingUp) this.catchUp(s)
    return () => this.remove(s)
  }

  /** Replays the history after the subscriber's position, a round each time its connection took the last; then it is live. */
  private catchUp(s: Subscriber): void {
    if (!this.subscribers.has(s)) return // it left between rounds
    const first = this.first
    if (first === undefined || first > s.after + 1) {
      // The history moved past it while it replayed (a slow reader of a busy room): it cannot resume exactly.
      Object.assign(s, { after: this.head, catchingUp: false })
      if (s.sink.write(resetFrame({ head: this.head, first: first ?? null }))) s.sink.checkpoint?.(s)
      else this.drop(s)
      return
    }
    // A round is REPLAY_ROUND_EVENTS frames written (or REPLAY_ROUND_BYTES queued), however many events of other
    // topics it skips: a narrow filter over a long history does not cost a round trip per page read.
    let frames = 0
    let page: StoredEvent[]
    round: while ((page = this.history.since(s.after, REPLAY_ROUND_EVENTS)).length > 0)
      for (const e of page) {
        if (frames >= REPLAY_ROUND_EVENTS || s.sink.backlog >= REPLAY_ROUND_BYTES) break round
        if (!this.deliver(s, e, true)) return
        if (s.accepts(e.topic)) frames++
      }
    s.catchingUp = s.after < this.head
    s.sink.checkpoint?.(s)
    if (s.catchingUp) s.sink.whenDrained(() => this.catchUp(s))
  }

  /** Writes one event if the subscriber wants it; false when its queue is full (it is then dropped). */
  private deliver(s: Subscriber, e: StoredEvent, replay = false): boolean {
    if (e.seq <= s.after) return true
    s.after = e.seq
    if (!s.accepts(e.topic)) return true
    if (s.sink.write(e.frame, replay)) return (this.delivered++, true)
    this.drop(s)
    return false
  }

  private drop(s: Subscriber) {
    if (!this.subscribers.has(s)) return
    this.remove(s)
    this.slowDropped++
    this.options.onSlowDrop?.(this.tenant, s.sink.backlog)
    s.sink.close('slow')
  }

  private remove(s: Subscriber) {
    if (this.subscribers.delete(s)) this.counter.leave(s.keys)
  }

  private broadcastPresence() {
    const all = JSON.stringify(this.counter.snapshot(this.tenant))
    if (all === this.lastPresence) return // joins and leaves cancelled out
    this.lastPresence = all
    // Each subscriber sees only its granted topics: encode once per distinct set of grants.
    const frames = new Map<string, Uint8Array>()
    for (const s of this.subscribers) {
      if (!s.presence) continue
      const key = s.grants ? s.grants.join(',') : '*'
      let frame = frames.get(key)
      if (!frame) frames.set(key, (frame = encodeControl(EVENTS.presence, this.presence(s.grants))))
      if (!s.sink.write(frame)) this.drop(s)
    }
  }

  /** Presence was last broadcast for exactly the subscribers now held (a Durable Object after waking). */
  presenceSettled(): void {
    this.lastPresence = JSON.stringify(this.counter.snapshot(this.tenant))
  }

  /** A comment line to every subscriber; a failed write drops it. */
  heartbeat(): void {
    for (const s of this.subscribers) if (!s.sink.write(HEARTBEAT)) this.drop(s)
  }

  closeAll(): void {
    for (const s of this.subscribers) s.sink.close('end')
    this.subscribers.clear()
    this.counter.clear()
  }
}
