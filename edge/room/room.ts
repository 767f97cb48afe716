import { DEFAULTS, EVENTS } from '../../shared/protocol.ts'
import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply, TenantId } from '../../shared/schema.ts'
import { encodeControl, encodeFrame, HEARTBEAT } from '../../shared/sse.ts'
import { PresenceCounter, presenceKeys } from './presence.ts'
import { topicMatcher, type TopicFilter } from './topics.ts'

/** Where a room writes one subscriber's bytes. */
export interface Sink {
  /**
   * Queue bytes; false means the subscriber's queue is full and the room drops it. A `replay` write is outside the
   * queue's bounds: a replay is bounded by its round (REPLAY_ROUND_BYTES) and is never mistaken for slowness.
   */
  write(chunk: Uint8Array, replay?: boolean): boolean
  /** End the stream (the client reconnects with Last-Event-ID and resumes). */
  close(): void
  /** Bytes written and not yet taken by the client's connection. */
  readonly backlog: number
  /** Calls `fn` once, when the connection has taken what was written (a replay goes on from there). */
  whenDrained(fn: () => void): void
}

/**
 * A replay goes out in rounds of at most this many bytes (or REPLAY_ROUND_EVENTS frames), each when the client's
 * connection took the last: a resume from far back holds one round per connection, never a copy of the history.
 */
export const REPLAY_ROUND_BYTES = 64 * 1024
export const REPLAY_ROUND_EVENTS = 256

export interface SubscribeOptions {
  topics: TopicFilter
  /** Resume after this seq; undefined = live only. */
  lastEventId?: number
  /** Also receive `event: presence` when subscriber counts change (and once on joining). */
  presence?: boolean
}

export interface RoomOptions {
  /** Events kept for resume. */
  historyLimit: number
  /** Bytes of frames kept for resume (the newest event is kept whatever its size). */
  historyBytes?: number
  /** Told when a subscriber is dropped for falling behind, with the bytes it had queued (logs). */
  onSlowDrop?: (tenant: string, queuedBytes: number) => void
  /** Least time between two presence events (default DEFAULTS.presenceIntervalMs). */
  presenceIntervalMs?: number
}

/** One stored event: the frame is encoded once and shared by every subscriber. */
export interface StoredEvent {
  seq: number
  topic: string
  ts: number
  frame: Uint8Array
}

interface Subscriber {
  sink: Sink
  accepts: (topic: string) => boolean
  /** Highest seq this subscriber has received or declared seen. */
  after: number
  /** Still replaying from the history: live events reach it through the history, in its own rounds. */
  catchingUp: boolean
  /** Presence keys it counts under. */
  keys: string[]
  /** Receives presence events; `grants` limits which topics they name. */
  presence: boolean
  grants: readonly string[] | undefined
}

/** What a resume request gets, decided from the history bounds alone (pure; tested without a network). */
export type ResumePlan = { kind: 'live' } | { kind: 'replay'; after: number } | { kind: 'reset' }

/**
 * @param first seq of the oldest event held (undefined when none)
 * @param head highest seq held or acknowledged (0 when the room knows nothing)
 */
export const planResume = (lastEventId: number | undefined, first: number | undefined, head: number): ResumePlan => {
  if (lastEventId === undefined) return { kind: 'live' }
  if (lastEventId >= head) return { kind: 'replay', after: lastEventId } // nothing to replay; skip seqs ≤ it later
  if (first === undefined || lastEventId < first - 1) return { kind: 'reset' }
  return { kind: 'replay', after: lastEventId }
}

/** Index of the first event after `after` in a seq-ordered history, from index `lo` on (binary search). */
const firstAfter = (held: readonly StoredEvent[], after: number, lo = 0): number => {
  let hi = held.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (held[mid]!.seq > after) hi = mid
    else lo = mid + 1
  }
  return lo
}

/**
 * A tenant's room: a bounded history for resume and a set of live subscribers. Runtime-neutral and synchronous,
 * so replay and the switch to live happen in one turn: no event can fall between them or arrive twice.
 */
export class Room {
  private history: StoredEvent[] = []
  /** Bytes of the frames in `history`. */
  private historyBytes = 0
  private subscribers = new Set<Subscriber>()
  private lastSeq = 0
  /** Subscribers dropped because they could not keep up. */
  slowDropped = 0
  /** Event frames written to subscribers (for metrics). */
  delivered = 0
  private readonly counter: PresenceCounter
  private lastPresence = ''

  constructor(
    readonly tenant: TenantId,
    private readonly options: RoomOptions,
  ) {
    this.counter = new PresenceCounter(() => this.broadcastPresence(), options.presenceIntervalMs ?? DEFAULTS.presenceIntervalMs)
  }

  /** Subscriber counts per topic, as a token with `grants` may see them. */
  presence(grants?: readonly string[]): PresenceSnapshot {
    return this.counter.snapshot(this.tenant, grants)
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

  get head(): number {
    return this.lastSeq
  }

  get size(): number {
    return this.subscribers.size
  }

  /** Oldest seq held, for resume decisions. */
  get first(): number | undefined {
    return this.history[this.oldest]?.seq
  }

  /** Events after `after`, oldest first (for persistence layers and tests). */
  since(after: number): StoredEvent[] {
    return this.history.slice(firstAfter(this.history, after, this.oldest))
  }

  /**
   * Applies a relay batch. Seqs the room already has are ignored; a batch that would leave a gap is refused (the
   * reply's head tells the relay where to resend from) unless `rebase` says the outbox has nothing older.
   */
  publish(body: PublishBody): PublishReply {
    const fresh = body.events.filter((e) => e.seq > this.lastSeq)
    if (fresh.length > 0) {
      const start = fresh[0]!.seq
      if (start !== this.lastSeq + 1) {
        if (!body.rebase) return { tenant: this.tenant, head: this.lastSeq }
        // A gap inside the history would be a silent loss on resume: start over at `start`.
        this.history = []
        this.historyBytes = 0
        // Subscribers positioned before the gap would miss events silently: tell them to refetch instead.
        const reset = encodeControl(EVENTS.reset, { head: start - 1, first: start })
        for (const s of this.subscribers)
          if (s.after > 0 && s.after < start - 1) {
            s.after = start - 1
            if (!s.sink.write(reset)) this.drop(s)
          }
      }
      // Data is JSON text, framed as it came (never parsed here: see EventData); a marker has its own event name.
      for (const e of fresh) this.append({ seq: e.seq, topic: e.topic, ts: e.ts, frame: encodeFrame(e.seq, e.event ?? e.topic, e.data) })
      this.trim()
    }
    return { tenant: this.tenant, head: this.lastSeq }
  }

  private append(e: StoredEvent) {
    this.history.push(e)
    this.historyBytes += e.frame.byteLength
    this.lastSeq = e.seq
    for (const s of this.subscribers) if (!s.catchingUp) this.deliver(s, e)
  }

  /** Writes one event if the subscriber wants it; false when its queue is full. */
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
    s.sink.close()
  }

  private remove(s: Subscriber) {
    if (this.subscribers.delete(s)) this.counter.leave(s.keys)
  }

  private trim() {
    const limit = this.options.historyLimit
    const maxBytes = this.options.historyBytes ?? DEFAULTS.historyBytes
    // Splice in chunks rather than shifting per event: amortised O(1) per publish, at most 1/8 extra held.
    let cut = this.history.length > limit + Math.max(1, limit >> 3) ? this.history.length - limit : 0
    let bytes = this.historyBytes
    for (let i = 0; i < cut; i++) bytes -= this.history[i]!.frame.byteLength
    // The byte bound is exact: large events would otherwise hold many times the bound.
    while (bytes > maxBytes && cut < this.history.length - 1) bytes -= this.history[cut++]!.frame.byteLength
    if (cut > 0) {
      this.history.splice(0, cut)
      this.historyBytes = bytes
    }
  }

  /** Index of the oldest event served for resume: the newest `limit` are (the slack above is never served). */
  private get oldest(): number {
    return Math.max(0, this.history.length - this.options.historyLimit)
  }

  /**
   * Replays what the subscriber missed (or tells it to reset), then adds it to the live set. Returns the
   * function that removes it.
   */
  subscribe(options: SubscribeOptions, sink: Sink): () => void {
    const s: Subscriber = {
      sink,
      accepts: topicMatcher(options.topics),
      after: 0,
      catchingUp: false,
      keys: presenceKeys(options.topics),
      presence: options.presence === true,
      grants: options.topics.grants,
    }
    const plan = planResume(options.lastEventId, this.first, this.lastSeq)
    if (plan.kind === 'reset') {
      sink.write(encodeControl(EVENTS.reset, { head: this.lastSeq, first: this.first ?? null }))
      s.after = this.lastSeq
    } else if (plan.kind === 'replay') {
      s.after = plan.after
      s.catchingUp = plan.after < this.lastSeq
    } else {
      s.after = this.lastSeq
    }
    this.subscribers.add(s)
    this.counter.join(s.keys)
    if (s.presence && !sink.write(encodeControl(EVENTS.presence, this.presence(s.grants)))) this.drop(s)
    else if (s.catchingUp) this.catchUp(s)
    return () => this.remove(s)
  }

  /**
   * Replays the history after the subscriber's position, one round at a time (see REPLAY_ROUND_BYTES), each round
   * when its connection has taken the last; then it is live. The history is shared: nothing is copied per client.
   */
  private catchUp(s: Subscriber): void {
    if (!this.subscribers.has(s)) return // it left between rounds
    const held = this.history
    const from = this.oldest
    if (from >= held.length || held[from]!.seq > s.after + 1) {
      // The history moved past it while it replayed (a slow reader of a busy room): it cannot resume exactly.
      s.after = this.lastSeq
      s.catchingUp = false
      if (!s.sink.write(encodeControl(EVENTS.reset, { head: this.lastSeq, first: this.first ?? null }))) this.drop(s)
      return
    }
    let n = 0
    for (let i = firstAfter(held, s.after, from); i < held.length; i++) {
      if (n >= REPLAY_ROUND_EVENTS || s.sink.backlog >= REPLAY_ROUND_BYTES) return s.sink.whenDrained(() => this.catchUp(s))
      const e = held[i]!
      if (!this.deliver(s, e, true)) return
      if (s.accepts(e.topic)) n++
    }
    s.catchingUp = false
  }

  /** A comment line to every subscriber; a write that fails drops the subscriber. */
  heartbeat(): void {
    for (const s of this.subscribers) if (!s.sink.write(HEARTBEAT)) this.drop(s)
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const s of this.subscribers) s.sink.close()
    this.subscribers.clear()
    this.counter.clear()
  }
}
