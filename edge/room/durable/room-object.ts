import { RelayError } from '../../../shared/errors.ts'
import type { PresenceSnapshot } from '../../../shared/presence.ts'
import type { PublishBody, PublishReply } from '../../../shared/schema.ts'
import type { StoredEvent } from '../history.ts'
import { presenceSnapshot, type Tally } from '../presence.ts'
import { Room, type Position, type SubscribeOptions } from '../room.ts'
import type { TopicFilter } from '../topics.ts'
import type { WorkersSettings } from '../../config.ts'
import { OwnerLink, type OwnerStub } from './owner-link.ts'
import { Shards, type ShardState, type ShardStub } from './shards.ts'
import { ATTACHMENT_FILTER_CHARS, compactFilter, readAttachment, SocketSink, type RoomSocket } from './socket-sink.ts'
import { SqliteHistory, type RoomSql, type SqliteHistoryOptions } from './sqlite-history.ts'

/** The other objects of a sharded room, as an owner sees them (its shards) or as a shard does (its owner). */
export type RoomPeers = { shard(index: number): ShardStub } | { index: number; owner(): OwnerStub }

export interface RoomObjectOptions
  extends Pick<WorkersSettings, 'HISTORY_LIMIT' | 'HISTORY_MAX_BYTES' | 'HISTORY_MAX_AGE_S' | 'ROOM_SHARD_SUBSCRIBERS'>,
    Pick<SqliteHistoryOptions, 'transaction'> {
  /** The tenant, when the object knows its name (`ctx.id.name`); else learnt from the first call. */
  tenant?: string
  /** Absent: a room that never shards (tests of one object). */
  peers?: RoomPeers
}

/** Subscribers a fan-out turn visits before it yields, so that a publish arriving meanwhile is stored and answered between turns. */
const FAN_OUT_TURN = 256
/** Stored events not yet fanned out past which a publish first finishes the fan-out: the relay waits, so a room that cannot keep up slows it. */
const FAN_OUT_BACKLOG = { events: 1024, bytes: 8 << 20 }

/**
 * What a tenant's Durable Object does, runtime-neutral (workers.ts wires it to `cloudflare:workers`): one Room over a SQLite history, its
 * subscribers hibernatable WebSockets; its own part is the sockets' attachments, and rebuilding the subscribers from them on waking. It
 * answers a batch once it is stored and fans it out after (a turn at a time); a hot room shards (shards.ts, owner-link.ts).
 */
export class RoomObject {
  readonly room: Room
  readonly history: SqliteHistory
  /** An owner's shards; a shard's link to its owner (neither for a room that never shards). */
  readonly shards: Shards | undefined
  private readonly link: OwnerLink | undefined
  private readonly sinks = new Map<RoomSocket, { sink: SocketSink; leave: () => void; ref?: number }>()
  /** A fan-out turn is scheduled; `feedShards`: a batch arrived since the shards were last fed. */
  private fanning = false
  private feedShards = false

  /** @param sockets the sockets still attached after a hibernation (`ctx.getWebSockets()`). */
  constructor(
    private readonly sql: RoomSql,
    private readonly options: RoomObjectOptions,
    sockets: Iterable<RoomSocket> = [],
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS room_filters (id INTEGER PRIMARY KEY, filter TEXT NOT NULL)`)
    const { HISTORY_LIMIT: limit, HISTORY_MAX_BYTES: bytes, HISTORY_MAX_AGE_S: maxAgeS, transaction, peers } = options
    this.history = new SqliteHistory(sql, { limit, bytes, maxAgeMs: maxAgeS * 1000, transaction })
    const onStored = (events: readonly StoredEvent[], restart: boolean) => this.shards?.stored(events, restart)
    this.room = new Room(options.tenant ?? '', { history: this.history, onPresence: () => this.presenceChanged(), onStored })
    const state = () => ({ tally: this.room.presenceTally(), head: this.history.head })
    if (peers && 'owner' in peers) {
      this.link = new OwnerLink(sql, peers.index, peers.owner, state)
      this.room.setOthers(this.link.others, false)
    } else if (peers) {
      const own = () => this.room.presenceTally()
      const onTally = (all: Tally) => this.room.setOthers(all)
      this.shards = new Shards(sql, { limit: options.ROOM_SHARD_SUBSCRIBERS, history: this.history, stub: peers.shard, own, onTally })
      this.room.setOthers(this.shards.tally(), false)
    }
    const refs: number[] = []
    for (const ws of sockets) {
      const a = readAttachment(ws)
      const topics = a?.topics ?? (a?.ref !== undefined ? this.storedFilter(a.ref) : undefined)
      if (!a || !topics) continue
      // A socket still replaying goes on from where its last round ended; any other had everything up to the head.
      const position = { after: a.catchingUp ? a.after : Math.max(a.after, this.room.head), catchingUp: a.catchingUp === true }
      this.attach(ws, { topics, presence: a.presence === true }, a.ref, position)
      if (a.ref !== undefined) refs.push(a.ref)
    }
    // Presence was last broadcast (and reported to the owner) for exactly these sockets (a pending broadcast keeps the object awake).
    this.room.presenceSettled()
    this.link?.settled()
    // Filters of sockets that closed while the object was gone (a crash or reset delivers no close event).
    sql.exec(`DELETE FROM room_filters WHERE id NOT IN (SELECT value FROM json_each(?))`, JSON.stringify(refs))
    // An owner that stopped (evicted mid-feed, say) may have left a shard behind: each is asked where it stands, and fed.
    if (this.shards?.indexes.length) setTimeout(() => this.shards?.feedAll(), 0)
  }

  private learn(tenant: string) {
    if (!this.room.tenant) (this.room as { tenant: string }).tenant = tenant
  }

  /** A relay batch (the Worker has verified its signature): answered once stored; subscribers and shards get it after. */
  publish(body: PublishBody): PublishReply {
    this.learn(body.tenant)
    this.keepUp()
    const reply = this.room.accept(body)
    this.fanOutLater()
    return reply
  }

  /** A shard fed by its owner, as a room by the relay: answered once stored (with where it stands), fanned out after. */
  feed(events: readonly StoredEvent[], rebase: boolean): ShardState {
    this.keepUp()
    const head = this.room.acceptFramed(events, rebase)
    if (this.room.backlog.events > 0) this.fanOutLater()
    const count = this.link?.count() ?? { tally: this.room.presenceTally(), version: 0 }
    return { ...count, head }
  }

  /** Subscriber counts per topic as a token with `grants` sees them: an owner's and its shards' as they count them now. */
  async presence(tenant: string, grants?: readonly string[]): Promise<PresenceSnapshot> {
    this.learn(tenant)
    const tallies = [this.room.presenceTally(), ...((await this.shards?.tallies()) ?? [])]
    return presenceSnapshot(this.room.tenant, tallies, grants)
  }

  /** Whether a new subscriber goes to a shard: this is an owner holding ROOM_SHARD_SUBSCRIBERS already. */
  get full(): boolean {
    return this.shards !== undefined && this.room.size >= this.options.ROOM_SHARD_SUBSCRIBERS
  }

  /** The shard a new subscriber goes to, once it holds the history up to now (an owner that is full). */
  place(): Promise<number> {
    if (!this.shards) throw new RelayError('INTERNAL', 'only the owner of a room places subscribers')
    return this.shards.place()
  }

  /** A shard's subscribers changed (an owner's RPC). */
  report(index: number, state: ShardState): void {
    this.shards?.report(index, state)
  }

  /** The rest of the room's subscribers, from the owner (a shard's RPC): counted in its presence events. */
  setOthers(tally: Tally): void {
    if (!this.link) return
    this.link.others = tally
    this.room.setOthers(tally)
  }

  get size(): number {
    return this.room.size
  }

  /** A room that cannot fan out as fast as batches come first finishes what it has: the relay then waits for its answer. */
  private keepUp(): void {
    const { events, bytes } = this.room.backlog
    if (events >= FAN_OUT_BACKLOG.events || bytes >= FAN_OUT_BACKLOG.bytes) this.room.fanOut()
  }

  /**
   * Fans out after the answer: a timer, not a microtask, because the RPC's reply leaves only when this turn ends. Each turn visits
   * FAN_OUT_TURN subscribers, so a publish that arrives meanwhile waits for one turn, not for the whole fan-out (Room.fanOut keeps the order).
   */
  private fanOutLater(): void {
    this.feedShards = true
    if (this.fanning) return
    this.fanning = true
    setTimeout(this.turn, 0)
  }

  private readonly turn = (): void => {
    if (this.feedShards) {
      this.feedShards = false
      // The shards' calls leave when this turn ends: the local fan-out waits for the next, so theirs run alongside it.
      if (this.shards?.feedAll()) return void setTimeout(this.turn, 0)
    }
    if (this.room.fanOut(FAN_OUT_TURN) && !this.feedShards) this.fanning = false
    else setTimeout(this.turn, 0)
  }

  private presenceChanged(): void {
    this.shards?.tell()
    this.link?.changed()
  }

  /** A Worker's subscriber: replays (in rounds the Worker asks for), then live. */
  connect(ws: RoomSocket, options: SubscribeOptions, tenant: string): void {
    this.learn(tenant)
    // Presence events name only the topics a subscriber's grants allow: keep the grants for those subscribers.
    const topics = options.presence ? options.topics : compactFilter(options.topics)
    const json = JSON.stringify(topics)
    const ref =
      json.length <= ATTACHMENT_FILTER_CHARS
        ? undefined
        : Number(this.sql.exec(`INSERT INTO room_filters (filter) VALUES (?) RETURNING id`, json).toArray()[0]!.id)
    this.attach(ws, { ...options, topics }, ref)
  }

  private attach(ws: RoomSocket, options: SubscribeOptions, ref: number | undefined, restore?: Position) {
    const tag = { ...(ref !== undefined ? { ref } : { topics: options.topics }), ...(options.presence ? { presence: true as const } : {}) }
    const sink = new SocketSink(ws, tag, () => this.disconnect(ws))
    const entry: { sink: SocketSink; leave: () => void; ref?: number } = { sink, leave: () => {}, ...(ref !== undefined ? { ref } : {}) }
    this.sinks.set(ws, entry)
    sink.restoring = restore !== undefined
    entry.leave = this.room.subscribe(options, sink, restore)
    sink.restoring = false
  }

  /** The Worker read the last round of this socket's replay (ROOM_SOCKET.more). */
  more(ws: RoomSocket): void {
    this.sinks.get(ws)?.sink.drain()
  }

  disconnect(ws: RoomSocket): void {
    const entry = this.sinks.get(ws)
    if (!entry) return
    this.sinks.delete(ws)
    entry.leave()
    if (entry.ref !== undefined) this.sql.exec(`DELETE FROM room_filters WHERE id = ?`, entry.ref)
  }

  private storedFilter(ref: number): TopicFilter | undefined {
    const row = this.sql.exec(`SELECT filter FROM room_filters WHERE id = ?`, ref).toArray()[0]
    return row ? (JSON.parse(String(row.filter)) as TopicFilter) : undefined
  }
}
