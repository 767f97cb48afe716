import { EVENTS, PRESENCE_INTERVAL_MS, type ResetPayload } from '../../shared/protocol.ts'
import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply, TenantId } from '../../shared/schema.ts'
import { encodeControl, HEARTBEAT } from '../../shared/sse.ts'
import { type History, type StoredEvent, storedEvent } from './history.ts'
import { concatBytes } from './queue.ts'
import { PresenceCounter, presenceKeys, type Tally } from './presence.ts'
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
  /** Told when presence counts changed (at most once per PRESENCE_INTERVAL_MS): a sharded room's parts tell each other. */
  onPresence?: () => void
  /** Told of the events it stored (`restart`: a rebase started the history over): a sharded room's owner keeps those its shards lack. */
  onStored?: (events: readonly StoredEvent[], restart: boolean) => void
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

/** Where a rebase restarted the history: subscribers positioned before `start - 1` get `frame` (a reset) instead of a silent gap. */
interface Restart {
  start: number
  frame: Uint8Array
}

/**
 * A tenant's room: a history for resume and live subscribers, on any runtime (the history and the sinks are where runtimes differ).
 * Synchronous, so replay and the switch to live happen without a gap or a duplicate.
 */
export class Room {
  private readonly subscribers = new Set<Subscriber>()
  private readonly history: History
  slowDropped = 0 // subscribers dropped because they could not keep up
  delivered = 0 // event frames written to subscribers (metrics)
  private readonly counter = new PresenceCounter(() => this.presenceChanged(), PRESENCE_INTERVAL_MS)
  private lastPresence = ''
  /** Stored and not yet sent to every live subscriber, oldest first (see fanOut); empty whenever publish is used. */
  private readonly unsent: (StoredEvent | Restart)[] = []
  private unsentBytes = 0
  /** `unsent` framed as one write while it holds only events (see bringUp); undefined once `unsent` changes. */
  private joined: { items: number; first: number; last: number; topics: string[]; frames: Uint8Array | undefined } | undefined
  /** The fan-out pass under way: the subscribers it has yet to visit, and how many of `unsent` it sends them all. */
  private pass: { next: Iterator<Subscriber>; items: number } | undefined

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

  /** Subscriber counts per topic, as a token with `grants` may see them (a sharded room's: with the rest of the room's, setOthers). */
  presence(grants?: readonly string[]): PresenceSnapshot {
    return this.counter.snapshot(this.tenant, grants)
  }

  /** This room's own subscribers, as the parts of a sharded room add them up. */
  presenceTally(): Tally {
    return this.counter.tally()
  }

  /** The subscribers the rest of a sharded room holds: counted in presence from now on (and announced, unless not `notify`). */
  setOthers(others: Tally, notify = true): void {
    this.counter.setOthers(others, notify)
  }

  /** A relay batch: held seqs are ignored; a gap is refused (the reply's head says where to resend from) unless `rebase`. */
  publish(body: PublishBody): PublishReply {
    const reply = this.accept(body)
    this.fanOut()
    return reply
  }

  /** As publish, but only stored: subscribers get it from fanOut (a Durable Object answers the relay first). */
  accept(body: PublishBody): PublishReply {
    return { tenant: this.tenant, head: this.apply(body.events, body.rebase === true, storedEvent) }
  }

  /**
   * As publish, for events framed elsewhere (a copy of a history shared by several processes: KV rooms). Returns
   * the head.
   */
  publishFramed(events: readonly StoredEvent[], rebase: boolean): number {
    const head = this.acceptFramed(events, rebase)
    this.fanOut()
    return head
  }

  /** As accept, for events framed elsewhere (the owner of a sharded room feeding a shard). Returns the head. */
  acceptFramed(events: readonly StoredEvent[], rebase: boolean): number {
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
    this.options.onStored?.(events, gap)
    // Subscribers positioned before the gap would miss events silently: they are told to refetch instead.
    if (gap) this.unsent.push({ start, frame: resetFrame({ head: start - 1, first: start }) })
    for (const e of events) {
      this.unsent.push(e)
      this.unsentBytes += e.frame.byteLength
    }
    return this.history.head
  }

  /** Events stored and not yet sent to every live subscriber, and their bytes. */
  get backlog(): { events: number; bytes: number } {
    return { events: this.unsent.length, bytes: this.unsentBytes }
  }

  /**
   * Sends what was stored to the live subscribers, visiting at most `subscribers` of them (the rest on the next call, so a Durable Object can
   * answer a publish between turns); true once every one has everything. Each subscriber takes the events after its own position, in order:
   * one that joined after the store (its replay read the history, or it starts at the head) is skipped, never sent an event twice.
   */
  fanOut(subscribers = Infinity): boolean {
    let visited = 0
    while (this.unsent.length > 0) {
      // Events stored during a pass are sent on the next one too: those the pass already visited have not had them.
      this.pass ??= { next: this.subscribers.values(), items: this.unsent.length }
      for (let it = this.pass.next.next(); !it.done; it = this.pass.next.next()) {
        if (!it.value.catchingUp) this.bringUp(it.value)
        if (++visited >= subscribers) return false
      }
      for (const item of this.unsent.splice(0, this.pass.items)) if ('seq' in item) this.unsentBytes -= item.frame.byteLength
      this.pass = undefined
      this.joined = undefined
    }
    return true
  }

  /**
   * Sends a live subscriber what it has not had of `unsent`, in order. One that stands just before it and takes every
   * topic in it gets it as one write: measured (`npm run bench`, fan-out), a write per event and subscriber cost
   * about twice the CPU per delivery of the whole batch written once.
   */
  private bringUp(s: Subscriber): void {
    const all = this.unsentJoined()
    if (all.frames && s.after === all.first - 1 && all.topics.every((t) => s.accepts(t))) {
      s.after = all.last
      if (s.sink.write(all.frames)) this.delivered += all.items
      else this.drop(s)
      return
    }
    for (const item of this.unsent) {
      if ('seq' in item) {
        if (!this.deliver(s, item)) return
      } else if (s.after > 0 && s.after < item.start - 1) {
        s.after = item.start - 1
        if (!s.sink.write(item.frame)) {
          this.drop(s)
          return
        }
      }
    }
  }

  private unsentJoined(): NonNullable<Room['joined']> {
    const items = this.unsent.length
    // `unsent` only grows between passes, so its length says whether `joined` still describes it.
    if (this.joined?.items === items) return this.joined
    const events = this.unsent.filter((i): i is StoredEvent => 'seq' in i)
    this.joined = { items, first: events[0]?.seq ?? 0, last: events.at(-1)?.seq ?? 0, topics: [], frames: undefined }
    // A rebase's reset among them: each subscriber's own position decides (the per-event path).
    if (events.length !== items || items === 0) return this.joined
    this.joined.topics = [...new Set(events.map((e) => e.topic))]
    this.joined.frames = concatBytes(events.map((e) => e.frame))
    return this.joined
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

  private presenceChanged() {
    this.broadcastPresence()
    this.options.onPresence?.()
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
    this.unsent.length = 0
    this.unsentBytes = 0
    this.pass = undefined
  }
}
