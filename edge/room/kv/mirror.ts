/**
 * One instance's copy of a tenant's KV history, for the subscribers attached here: a Room (the same one every
 * runtime uses) over a history in memory, loaded from KV on the first subscriber and fed from then on by a watch of
 * the tenant's head key. Each change reads the events after the copy's head; a batch published through this
 * instance is also taken at once (Room drops the seqs it has, so each event reaches a subscriber once).
 */
import type { Log } from '../../../shared/log.ts'
import type { TenantId } from '../../../shared/schema.ts'
import { ArrayHistory, type History, type HistoryBounds, type StoredEvent } from '../history.ts'
import { Room } from '../room.ts'
import type { Kv } from './kv.ts'
import { headKey, type KvHead, type KvHistoryBounds, readEvents, readHead } from './store.ts'

/** Events read from KV per list call while catching up: bounds what one read holds in memory (64 KiB each at most). */
const CATCH_UP_PAGE = 256
/**
 * Newest events a copy loads on its first subscriber (one list call). It grows from there up to the room's bounds; a
 * resume from further back is replayed from KV (resume.ts).
 */
const LOAD_EVENTS = CATCH_UP_PAGE
/** Wait before watching again after a watch failed or ended. */
const REWATCH_MS = 1000

/**
 * An ArrayHistory whose head can stand above its newest event: KV keeps a tenant's head when all its events have
 * expired, and a resume must be judged against that head (an older Last-Event-ID gets `reset`, not silence).
 */
class MirrorHistory implements History {
  /** KV's head when the copy was loaded and held no event; 0 once it holds any. */
  floor = 0

  constructor(private readonly events: ArrayHistory) {}

  get head(): number {
    return Math.max(this.events.head, this.floor)
  }

  get first(): number | undefined {
    return this.events.first
  }

  append(events: readonly StoredEvent[], restart: boolean): void {
    this.events.append(events, restart)
    this.floor = 0
  }

  since(after: number, limit: number): StoredEvent[] {
    return this.events.since(after, limit)
  }
}

/** Splits seq-ordered events into runs of consecutive seqs. */
const consecutiveRuns = (events: readonly StoredEvent[]): StoredEvent[][] => {
  const runs: StoredEvent[][] = []
  for (const e of events) {
    const run = runs.at(-1)
    if (run && run.at(-1)!.seq + 1 === e.seq) run.push(e)
    else runs.push([e])
  }
  return runs
}

export interface MirrorOptions {
  kv: Kv
  tenant: TenantId
  /** KV's bounds (what the copy may find there). */
  kept: KvHistoryBounds
  /** The copy's bounds in memory. */
  history: HistoryBounds
  log?: Log
  onSlowDrop?: (tenant: string, queuedBytes: number) => void
}

export class Mirror {
  readonly room: Room
  private readonly history: MirrorHistory
  /** Settles once the copy is loaded from KV and the head key is watched; a failure leaves the mirror unusable. */
  readonly ready: Promise<void>
  /** True once loaded: from then on a batch published here is taken at once. */
  loaded = false
  /** Connections holding this copy (attached, or waiting for it to load). */
  users = 0
  /** Ends an idle copy after a grace period (see kvRooms). */
  idle: ReturnType<typeof setTimeout> | undefined
  /** The newest head KV reported, and how far KV has been read. */
  private latest: KvHead | undefined
  private through = 0
  private pumping = false
  private closed = false
  private watching: ReadableStreamDefaultReader<unknown> | undefined

  constructor(private readonly o: MirrorOptions) {
    this.history = new MirrorHistory(new ArrayHistory(o.history))
    this.room = new Room(o.tenant, { history: this.history, onSlowDrop: o.onSlowDrop })
    this.ready = this.load()
  }

  /** Watches first, then reads: a write after the read is then reported by the watch (or its first state). */
  private async load(): Promise<void> {
    void this.follow()
    const { head } = await readHead(this.o.kv, this.o.tenant)
    this.report(head)
    await this.catchUp(Math.min(LOAD_EVENTS, this.o.kept.limit))
    // Nobody is attached yet, so setting the head above what the copy holds resets no one.
    if (this.room.first === undefined && this.latest) this.history.floor = this.latest.seq
    this.loaded = true
    this.pump()
  }

  /** The watch loop: each state of the head key reported, until closed; a failed watch is started again. */
  private async follow(): Promise<void> {
    while (!this.closed) {
      try {
        const reader = this.o.kv.watch([headKey(this.o.tenant)]).getReader()
        this.watching = reader
        if (this.closed) await reader.cancel()
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          const head = value[0]?.value as KvHead | null | undefined
          if (head) this.report(head)
        }
      } catch (err) {
        if (!this.closed) this.o.log?.('warn', 'KV watch failed; watching again', { tenant: this.o.tenant, error: String(err) })
      }
      if (!this.closed) await new Promise((resolve) => setTimeout(resolve, REWATCH_MS))
    }
  }

  private report(head: KvHead): void {
    if (!this.latest || head.seq > this.latest.seq) this.latest = head
    if (this.loaded) this.pump()
  }

  /** Runs catchUp until the copy has read up to the newest head reported; one run at a time. */
  private pump(): void {
    if (this.pumping || this.closed) return
    this.pumping = true
    void (async () => {
      try {
        while (!this.closed && this.latest && this.latest.seq > Math.max(this.through, this.room.head)) await this.catchUp()
      } catch (err) {
        this.o.log?.('warn', 'KV read failed; retrying', { tenant: this.o.tenant, error: String(err) })
        setTimeout(() => this.pump(), REWATCH_MS)
      } finally {
        this.pumping = false
      }
    })()
  }

  /**
   * Reads KV's events after the copy's head up to the newest head reported, a page at a time, and hands them to
   * the room. What KV no longer holds (before a rebase, trimmed, expired) is skipped as a rebase, so subscribers
   * placed before it get `reset`: every gap the room sees is a real one. At most `depth` events back from the head.
   */
  private async catchUp(depth = this.o.kept.limit): Promise<void> {
    const target = this.latest
    if (!target) return
    let after = Math.max(this.through, this.room.head, target.base - 1, target.seq - depth)
    while (after < target.seq && !this.closed) {
      const upTo = Math.min(target.seq, after + CATCH_UP_PAGE)
      const page = await readEvents(this.o.kv, this.o.tenant, after, upTo)
      if (this.closed) return
      for (const run of consecutiveRuns(page)) this.room.publishFramed(run, true)
      after = upTo
      this.through = Math.max(this.through, upTo)
    }
  }

  /** Ends the watch and every stream of this copy. */
  close(): void {
    this.closed = true
    clearTimeout(this.idle)
    void this.watching?.cancel().catch(() => {})
    this.room.closeAll()
  }
}
