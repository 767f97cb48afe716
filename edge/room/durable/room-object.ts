import { ROOM_SOCKET } from '../../../shared/protocol.ts'
import type { PresenceSnapshot } from '../../../shared/presence.ts'
import type { PublishBody, PublishReply } from '../../../shared/schema.ts'
import { concatBytes } from '../queue.ts'
import { Room, type CloseReason, type Position, type Sink, type SubscribeOptions } from '../room.ts'
import { grantsAllow, type TopicFilter } from '../topics.ts'
import type { WorkersSettings } from '../../config.ts'
import { SqliteHistory, type RoomSql, type SqliteHistoryOptions } from './sqlite-history.ts'

/** A subscriber connection (a hibernatable WebSocket from a Worker): the room writes frames and tags it. */
export interface RoomSocket {
  send(message: string | ArrayBuffer | Uint8Array): void
  close(code?: number, reason?: string): void
  serializeAttachment(value: unknown): void
  deserializeAttachment(): unknown
}

/** What a socket carries across hibernation: its filter (or `ref`, the row holding one too large), where it stands, presence. */
interface Attachment extends Partial<Position> {
  topics?: TopicFilter
  ref?: number
  after: number
  /** Receives `event: presence` (its filter then keeps its grants, which limit what those events name). */
  presence?: true
}

/** workerd refuses attachments over 16 KiB; a filter above this goes to SQLite instead (2 rows written a connection). */
const ATTACHMENT_FILTER_CHARS = 8 * 1024

/** The smallest filter with the same meaning: requested topics the grants allow, else the grants. */
export const compactFilter = ({ requested, grants }: TopicFilter): TopicFilter => {
  if (requested && requested.length > 0) return { requested: requested.filter((t) => grantsAllow(grants, t)) }
  return grants === undefined ? {} : { grants }
}

const readAttachment = (ws: RoomSocket): Attachment | undefined => {
  const a = ws.deserializeAttachment() as Partial<Attachment> | null
  return a && typeof a.after === 'number' && (typeof a.topics === 'object' || typeof a.ref === 'number') ? (a as Attachment) : undefined
}

/**
 * One subscriber's WebSocket as a room's Sink: a turn's frames leave as one binary message. The Worker owns the browser's queue (it ends a
 * stream that falls behind, closing this socket), so nothing here is ever full; a replay waits for the Worker to ask for each round.
 */
class SocketSink implements Sink {
  private pending: Uint8Array[] = []
  private drained: (() => void) | undefined
  private live = false
  /** While the object rebuilds its subscribers after waking: the Worker already has its `pause`. */
  restoring = false
  /** Bytes sent since the Worker last asked for more: what bounds a replay round (the Worker's queue bounds the rest). */
  backlog = 0

  /** @param tag what the socket's attachment always holds: its filter (or `ref`), and `presence`. */
  constructor(
    private readonly ws: RoomSocket,
    private readonly tag: Omit<Attachment, 'after' | 'catchingUp'>,
    private readonly gone: () => void,
  ) {}

  write(chunk: Uint8Array): boolean {
    this.backlog += chunk.byteLength
    if (this.pending.push(chunk) === 1) queueMicrotask(() => this.flush())
    return true
  }

  whenDrained(fn: () => void): void {
    this.drained = fn
    if (!this.restoring) this.send(ROOM_SOCKET.pause)
  }

  /** The Worker asked for the next round. */
  drain(): void {
    this.backlog = 0
    const next = this.drained
    this.drained = undefined
    next?.()
  }

  checkpoint(p: Position): void {
    this.ws.serializeAttachment({ ...this.tag, after: p.after, ...(p.catchingUp ? { catchingUp: true } : {}) } satisfies Attachment)
    if (!p.catchingUp && !this.live) {
      this.live = true
      this.send(ROOM_SOCKET.live)
    }
  }

  close(reason: CloseReason): void {
    this.flush()
    try {
      this.ws.close(1000, reason === 'end' ? 'room closing' : reason)
    } catch {
      // already closed
    }
  }

  /** Sends what is pending, then `control`: in order, as the Worker must see them. */
  private send(control: string): void {
    this.flush()
    this.deliver(control)
  }

  private flush(): void {
    if (this.pending.length === 0) return
    const parts = this.pending
    this.pending = []
    this.deliver(concatBytes(parts))
  }

  /** A socket whose send throws has gone away: forget it (its Worker ends the SSE stream; the client resumes). */
  private deliver(message: string | Uint8Array): void {
    try {
      this.ws.send(message)
    } catch {
      this.pending = []
      this.gone()
    }
  }
}

export interface RoomObjectOptions
  extends Pick<WorkersSettings, 'HISTORY_LIMIT' | 'HISTORY_MAX_BYTES' | 'HISTORY_MAX_AGE_S'>,
    Pick<SqliteHistoryOptions, 'transaction'> {
  /** The tenant, when the object knows its name (`ctx.id.name`); else learnt from the first call. */
  tenant?: string
}

/**
 * What a tenant's Durable Object does, runtime-neutral (workers.ts wires it to `cloudflare:workers`): one Room over a SQLite history, its
 * subscribers hibernatable WebSockets; its own part is the sockets' attachments, and rebuilding the subscribers from them on waking.
 */
export class RoomObject {
  readonly room: Room
  readonly history: SqliteHistory
  private readonly sinks = new Map<RoomSocket, { sink: SocketSink; leave: () => void; ref?: number }>()

  /** @param sockets the sockets still attached after a hibernation (`ctx.getWebSockets()`). */
  constructor(
    private readonly sql: RoomSql,
    options: RoomObjectOptions,
    sockets: Iterable<RoomSocket> = [],
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS room_filters (id INTEGER PRIMARY KEY, filter TEXT NOT NULL)`)
    const { HISTORY_LIMIT: limit, HISTORY_MAX_BYTES: bytes, HISTORY_MAX_AGE_S: maxAgeS, transaction } = options
    this.history = new SqliteHistory(sql, { limit, bytes, maxAgeMs: maxAgeS * 1000, transaction })
    this.room = new Room(options.tenant ?? '', { history: this.history })
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
    // Presence was last broadcast for exactly these sockets (a pending broadcast keeps the object awake).
    this.room.presenceSettled()
    // Filters of sockets that closed while the object was gone (a crash or reset delivers no close event).
    sql.exec(`DELETE FROM room_filters WHERE id NOT IN (SELECT value FROM json_each(?))`, JSON.stringify(refs))
  }

  private learn(tenant: string) {
    if (!this.room.tenant) (this.room as { tenant: string }).tenant = tenant
  }

  /** A relay batch (the Worker has verified its signature). */
  publish(body: PublishBody): PublishReply {
    this.learn(body.tenant)
    return this.room.publish(body)
  }

  presence(tenant: string, grants?: readonly string[]): PresenceSnapshot {
    this.learn(tenant)
    return this.room.presence(grants)
  }

  get size(): number {
    return this.room.size
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
