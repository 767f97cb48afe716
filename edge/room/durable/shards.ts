import { backoffMs, sleep } from '../../../shared/backoff.ts'
import { RelayError } from '../../../shared/errors.ts'
import type { History, StoredEvent } from '../history.ts'
import { sumTallies, tallySize, type Tally } from '../presence.ts'
import type { RoomSql } from './sqlite-history.ts'

/** The object name of a tenant's shard: `#` is in no tenant id, so it never names a tenant's own room. */
export const shardName = (tenant: string, index: number) => `${tenant}#${index}`

/** The tenant an object's name belongs to, and which of its shards the object is (none: the tenant's own room, the owner). */
export const roomOf = (name: string): { tenant: string; shard?: number } => {
  const at = name.indexOf('#')
  return at < 0 ? { tenant: name } : { tenant: name.slice(0, at), shard: Number(name.slice(at + 1)) }
}

/** A shard's own subscribers; `version` orders counts that travel by different calls (feed answers, reports). */
export interface ShardCount {
  tally: Tally
  version: number
}

/** What a shard answers each feed, and tells its owner when its subscribers change: its head too. */
export interface ShardState extends ShardCount {
  head: number
}

/** A shard as its owner calls it (RPC on its Durable Object stub). Structural: no Workers types here. */
export interface ShardStub {
  /** Takes events as a room takes a relay batch (idempotent by seq, a gap refused unless `rebase`); answers where it stands. */
  feed(events: StoredEvent[], rebase: boolean): Promise<ShardState>
  tally(): Promise<Tally>
  /** The subscribers the rest of the room holds, for the presence events it sends. */
  others(tally: Tally): Promise<void>
}

export interface ShardsOptions {
  /** Subscribers a shard holds before new ones go to the next (ROOM_SHARD_SUBSCRIBERS). */
  limit: number
  /** The owner's history: what shards are fed from. */
  history: History
  stub(index: number): ShardStub
  /** The owner's own subscribers (what shards are told, with the other shards', for their presence events). */
  own(): Tally
  /** Told every shard's subscribers added up, whenever they change (the owner's presence counts them). */
  onTally(all: Tally): void
}

/** Events per feed call, and bytes of frames (at least one event whatever its size): well under an RPC message's limit. */
const FEED_EVENTS = 256
const FEED_BYTES = 4 << 20
/**
 * A subscriber sent to a shard counts toward its size until the shard's count grows by it, or for this long (it never came): meanwhile
 * the shard is not let go. One that comes later still is no loss: the shard reports it, and is taken back and fed.
 */
const PLACED_MS = 5_000
/** A failed call to a shard is tried this many times in all (with backoff); after that the next batch tries again. */
const TRIES = 8
/**
 * Stored events kept for shards that lack them after the owner's history dropped them (a batch larger than the history, or batches
 * stored while a feed was under way): a shard further behind than this is fed from the history, so gets a `rebase`.
 */
const UNFED = { events: 1024, bytes: 8 << 20 }

interface Shard {
  index: number
  tally: Tally
  version: number
  /** Its head as it last answered; undefined: ask first (new to this owner's memory, or a call failed). */
  head: number | undefined
  /** When subscribers were sent to it lately (PLACED_MS). */
  placed: number[]
  /** The run bringing it up to the owner's head, while one is under way; `again`: the head moved meanwhile. */
  run: Promise<void> | undefined
  again: boolean
  /** The others' subscribers as it was last told them (JSON), so an unchanged count is not sent again. */
  told: string | undefined
  /** Set while it is empty but may still get subscribers sent to it: when to look again. */
  recheck?: ReturnType<typeof setTimeout>
}

/**
 * The owner's side of a sharded room (docs/cloudflare.md, Sharding): which shards exist (a SQLite table, so an owner that restarts goes on
 * feeding them), where a new subscriber goes, and each shard fed every stored event in order from the owner's history, the way the relay
 * feeds a room: its answer says its head, a call that fails is made again from there, a shard behind the history gets a `rebase`.
 */
export class Shards {
  private readonly shards = new Map<number, Shard>()
  private retelling = false
  /** The events stored since the lowest head of a shard (UNFED at most), oldest first and contiguous: what a shard is fed from once the history has let them go. */
  private unfed: StoredEvent[] = []
  private unfedBytes = 0

  constructor(
    private readonly sql: RoomSql,
    private readonly options: ShardsOptions,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS room_shards (shard INTEGER PRIMARY KEY, tally TEXT NOT NULL)`)
    for (const row of sql.exec(`SELECT shard, tally FROM room_shards`)) this.add(Number(row.shard), JSON.parse(String(row.tally)))
  }

  /** The shards' indexes (diagnostics and tests). */
  get indexes(): number[] {
    return [...this.shards.keys()].sort((a, b) => a - b)
  }

  /** Every shard's subscribers, added up as last counted. */
  tally(): Tally {
    return sumTallies([...this.shards.values()].map((s) => s.tally))
  }

  /** Each shard's subscribers as it counts them now (a shard that cannot answer: as last counted). */
  tallies(): Promise<Tally[]> {
    return Promise.all(
      [...this.shards.values()].map((s) =>
        this.options
          .stub(s.index)
          .tally()
          .catch(() => s.tally),
      ),
    )
  }

  /**
   * The shard a new subscriber goes to: the first with room, else a new one. Answers once that shard holds the owner's history up to now,
   * so it plans the subscriber's resume as the owner would (a far Last-Event-ID replays, an old one gets reset, none starts at the head).
   */
  async place(): Promise<number> {
    const now = Date.now()
    let chosen: Shard | undefined
    for (const s of this.shards.values()) if (this.load(s, now) < this.options.limit && (!chosen || s.index < chosen.index)) chosen = s
    if (!chosen) {
      let index = 1
      while (this.shards.has(index)) index++
      chosen = this.add(index, {})
      this.sql.exec(`INSERT OR REPLACE INTO room_shards (shard, tally) VALUES (?, '{}')`, index)
    }
    chosen.placed.push(now)
    const head = this.options.history.head
    await this.feed(chosen)
    if (chosen.head === undefined || chosen.head < head)
      throw new RelayError('NOT_READY', `shard ${chosen.index} of this room did not answer; try again`)
    return chosen.index
  }

  /**
   * The owner stored these events (`restart`: a rebase started its history over). They are kept until every shard has them, so that a
   * shard is fed each one even when the history lets it go first: the relay does not wait for the shards, so a batch larger than the
   * history, or batches stored while a feed is under way, would otherwise reach a shard as a `rebase`, and its live subscribers as a gap.
   */
  stored(events: readonly StoredEvent[], restart: boolean): void {
    if (restart || this.shards.size === 0) {
      this.unfed = []
      this.unfedBytes = 0
    }
    if (this.shards.size === 0) return
    for (const e of events) {
      this.unfed.push(e)
      this.unfedBytes += e.frame.byteLength
    }
    // A shard whose head is unknown (new, or its last call failed) may lack any of them.
    let lowest = Infinity
    for (const s of this.shards.values()) lowest = Math.min(lowest, s.head ?? -1)
    let drop = 0
    while (
      drop < this.unfed.length &&
      (this.unfed[drop]!.seq <= lowest || this.unfed.length - drop > UNFED.events || this.unfedBytes > UNFED.bytes)
    )
      this.unfedBytes -= this.unfed[drop++]!.frame.byteLength
    if (drop > 0) this.unfed.splice(0, drop)
  }

  /** A batch was stored: each shard is fed what it lacks. False when there are none. */
  feedAll(): boolean {
    for (const s of this.shards.values()) void this.feed(s)
    return this.shards.size > 0
  }

  /** A shard's subscribers changed. One that the owner had let go is taken back and fed from its head (a subscriber came late). */
  report(index: number, state: ShardState): void {
    let s = this.shards.get(index)
    if (!s) {
      if (tallySize(state.tally) === 0) return
      s = this.add(index, {})
      this.sql.exec(`INSERT OR REPLACE INTO room_shards (shard, tally) VALUES (?, '{}')`, index)
      s.head = state.head
    }
    this.counted(s, state)
    if (this.shards.get(index) === s && (s.head ?? -1) < this.options.history.head) void this.feed(s)
  }

  /** Tells each shard the subscribers the rest of the room holds (the owner's and the other shards'), when that changed. */
  tell(): void {
    const own = this.options.own()
    for (const s of this.shards.values()) {
      const others = sumTallies([own, ...[...this.shards.values()].filter((o) => o !== s).map((o) => o.tally)])
      const json = JSON.stringify(others)
      if (json === s.told) continue
      s.told = json
      this.options
        .stub(s.index)
        .others(others)
        .catch(() => {
          // Told again in a while (or at the next change): presence events lag rather than stay wrong.
          if (s.told === json) s.told = undefined
          if (this.retelling) return
          this.retelling = true
          setTimeout(() => ((this.retelling = false), this.tell()), 1000)
        })
    }
  }

  private add(index: number, tally: Tally): Shard {
    const s: Shard = { index, tally, version: 0, head: undefined, placed: [], run: undefined, again: false, told: undefined }
    this.shards.set(index, s)
    return s
  }

  /** Subscribers a shard holds, and those sent to it lately. */
  private load(s: Shard, now: number): number {
    while (s.placed.length > 0 && s.placed[0]! <= now - PLACED_MS) s.placed.shift()
    return tallySize(s.tally) + s.placed.length
  }

  /** A shard's count, newer than the last: kept (SQLite, so presence survives the owner's restart), and the shard let go once empty. */
  private counted(s: Shard, { tally, version }: ShardCount): void {
    if (version <= s.version) return
    s.version = version
    const grew = tallySize(tally) - tallySize(s.tally)
    if (grew > 0) s.placed.splice(0, grew) // those sent to it have arrived (a shard's subscribers all come by placement)
    const json = JSON.stringify(tally)
    if (json !== JSON.stringify(s.tally)) {
      s.tally = tally
      this.sql.exec(`UPDATE room_shards SET tally = ? WHERE shard = ?`, json, s.index)
      this.options.onTally(this.tally())
    }
    if (tallySize(tally) > 0 || this.releaseIfEmpty(s) || s.recheck) return
    // Subscribers are still on their way to it: look again once they would have arrived.
    s.recheck = setTimeout(() => {
      s.recheck = undefined
      this.releaseIfEmpty(s)
    }, PLACED_MS)
  }

  /** An empty shard is forgotten: not fed, not counted. Its storage stays; if it is used again, it is fed from where it stopped. */
  private releaseIfEmpty(s: Shard): boolean {
    if (this.shards.get(s.index) !== s || tallySize(s.tally) > 0 || this.load(s, Date.now()) > 0) return false
    this.shards.delete(s.index)
    this.sql.exec(`DELETE FROM room_shards WHERE shard = ?`, s.index)
    this.options.onTally(this.tally())
    return true
  }

  /** Brings a shard up to the owner's head; resolves once it is there (or it did not answer TRIES times: its head is then unknown). */
  private feed(s: Shard): Promise<void> {
    s.again = true
    s.run ??= this.run(s)
    return s.run
  }

  private async run(s: Shard): Promise<void> {
    await undefined // s.run is set before this can end
    try {
      for (let failures = 0; s.again && this.shards.get(s.index) === s; ) {
        s.again = false
        try {
          await this.bringUp(s)
          failures = 0
        } catch {
          s.head = undefined // ask where it stands once it answers again
          if (++failures >= TRIES) return
          await sleep(backoffMs(failures))
          s.again = true
        }
      }
    } finally {
      s.run = undefined
    }
  }

  /** One call at a time, each awaited, so a shard takes the events in order; each answer says where the next starts. */
  private async bringUp(s: Shard): Promise<void> {
    const { history, stub } = this.options
    const shard = stub(s.index)
    if (s.head === undefined) this.answered(s, await shard.feed([], false))
    while (s.head !== undefined && s.head < history.head && this.shards.get(s.index) === s) {
      const events = page(this.since(s.head))
      if (events.length === 0) return
      // The owner's history no longer reaches the shard's head (it was away long, or the relay rebased the owner): start it over.
      this.answered(s, await shard.feed(events, events[0]!.seq !== s.head + 1))
    }
  }

  /** The events after `after` that a feed call sends: from the history, or, once it no longer reaches `after`, from those kept unfed. */
  private since(after: number): StoredEvent[] {
    const events = this.options.history.since(after, FEED_EVENTS)
    if (events.length === 0 || events[0]!.seq === after + 1) return events
    const i = after + 1 - (this.unfed[0]?.seq ?? 0)
    return this.unfed[i]?.seq === after + 1 ? this.unfed.slice(i, i + FEED_EVENTS) : events
  }

  private answered(s: Shard, state: ShardState): void {
    s.head = state.head
    this.counted(s, state)
  }
}

/** The first events that fit in FEED_BYTES (at least one). */
const page = (events: StoredEvent[]): StoredEvent[] => {
  let bytes = 0
  for (let i = 0; i < events.length; i++) if ((bytes += events[i]!.frame.byteLength) > FEED_BYTES && i > 0) return events.slice(0, i)
  return events
}
