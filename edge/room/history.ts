import type { WireEvent } from '../../shared/schema.ts'
import { encodeFrame } from '../../shared/sse.ts'

/** One stored event: its frame is encoded once and shared by every subscriber. */
export interface StoredEvent {
  seq: number
  /** What subscribers filter on (a marker keeps its event's topic). */
  topic: string
  /** Commit time, ms since epoch. */
  ts: number
  frame: Uint8Array
}

/**
 * A relay event as a room stores it. Data is JSON text, framed as it came (never parsed here: see EventData); a
 * marker has its own event name and keeps its event's topic.
 */
export const storedEvent = (e: WireEvent): StoredEvent => ({
  seq: e.seq,
  topic: e.topic,
  ts: e.ts,
  frame: encodeFrame(e.seq, e.event ?? e.topic, e.data),
})

/**
 * The events a room can replay: a contiguous run of seqs ending at the room's head. In memory on Node and Deno
 * (ArrayHistory), in SQLite in a Durable Object. Synchronous, so a room replays and goes live in one turn.
 */
export interface History {
  /** Newest seq held (0 when none): the newest event is never trimmed, so this is the room's head. */
  readonly head: number
  /** Oldest seq served for resume (undefined when none). */
  readonly first: number | undefined
  /** Appends events after the head (`restart`: replacing all, a rebase), then trims. All or nothing: a throw changes nothing. */
  append(events: readonly StoredEvent[], restart: boolean): void
  /** At most `limit` events after `after`, oldest first. */
  since(after: number, limit: number): StoredEvent[]
}

/** Events kept, and bytes of frames kept (the newest event is kept whatever its size). */
export interface HistoryBounds {
  limit: number
  bytes: number
}

export class ArrayHistory implements History {
  private events: StoredEvent[] = []
  private bytes = 0

  constructor(private readonly bounds: HistoryBounds) {}

  get head(): number {
    return this.events.at(-1)?.seq ?? 0
  }

  get first(): number | undefined {
    return this.events[this.oldest]?.seq
  }

  /** Index of the oldest event served: the newest `limit` are (the slack above is never served). */
  private get oldest(): number {
    return Math.max(0, this.events.length - this.bounds.limit)
  }

  append(events: readonly StoredEvent[], restart: boolean): void {
    if (restart) {
      this.events = []
      this.bytes = 0
    }
    for (const e of events) {
      this.events.push(e)
      this.bytes += e.frame.byteLength
    }
    this.trim()
  }

  since(after: number, limit: number): StoredEvent[] {
    // Binary search for the first event after `after`, from the oldest served.
    let lo = this.oldest
    let hi = this.events.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.events[mid]!.seq > after) hi = mid
      else lo = mid + 1
    }
    return this.events.slice(lo, lo + limit)
  }

  private trim() {
    const { limit } = this.bounds
    // Splice in chunks rather than shifting per event: amortised O(1) per publish, at most 1/8 extra held.
    let cut = this.events.length > limit + Math.max(1, limit >> 3) ? this.events.length - limit : 0
    let bytes = this.bytes
    for (let i = 0; i < cut; i++) bytes -= this.events[i]!.frame.byteLength
    // The byte bound is exact: large events would otherwise hold many times the bound.
    while (bytes > this.bounds.bytes && cut < this.events.length - 1) bytes -= this.events[cut++]!.frame.byteLength
    if (cut > 0) {
      this.events.splice(0, cut)
      this.bytes = bytes
    }
  }
}
