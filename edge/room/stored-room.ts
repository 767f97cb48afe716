import type { PresenceSnapshot } from '../../shared/presence.ts'
import { DEFAULTS, EVENTS, ROOM_SOCKET } from '../../shared/protocol.ts'
import type { PublishBody, PublishReply } from '../../shared/schema.ts'
import { encodeControl, frameText } from '../../shared/sse.ts'
import { PresenceCounter, presenceKeys } from './presence.ts'
import { planResume, REPLAY_ROUND_BYTES, REPLAY_ROUND_EVENTS, type SubscribeOptions } from './room.ts'
import { grantsAllow, topicMatcher, type TopicFilter } from './topics.ts'

/**
 * The slice of a Durable Object's SQLite API (`ctx.storage.sql`) a stored room uses. Structural, so this file needs
 * no Workers types and stays importable from Node (the import-graph test keeps `cloudflare:*` in edge/platform/).
 */
export interface RoomSql {
  exec(query: string, ...bindings: unknown[]): Iterable<Record<string, unknown>> & { toArray(): Record<string, unknown>[] }
}

/** A subscriber connection (a hibernatable WebSocket on Workers): the room writes frames and tags it with its filter. */
export interface RoomSocket {
  send(message: string): void
  close(code?: number, reason?: string): void
  serializeAttachment(value: unknown): void
  deserializeAttachment(): unknown
}

export interface StoredRoomOptions {
  /** The tenant, when the object knows its name (`ctx.id.name`); else learnt from the first call. */
  tenant?: string
  /** Events kept for resume (the newest `historyLimit`). */
  historyLimit: number
  /** Events older than this (by commit time) are dropped; 0 keeps them until the count bound drops them. */
  maxAgeMs: number
  /** Bytes of frames kept (the newest event is kept whatever its size). */
  maxBytes?: number
  now?: () => number
  /** Runs the writes of one publish atomically (`ctx.storage.transactionSync`). */
  transaction?: <T>(fn: () => T) => T
  /** Least time between two presence events (default DEFAULTS.presenceIntervalMs). */
  presenceIntervalMs?: number
}

/**
 * What a socket carries across hibernation: its filter (or, for a filter too large for an attachment, the id of the
 * row that holds it) and the last seq it was sent or declared seen.
 */
interface Attachment {
  topics?: TopicFilter
  ref?: number
  after: number
  /** Receives `event: presence` (its filter then keeps its grants, which limit what those events name). */
  presence?: true
  /** Its replay was not finished: `after` is where it goes on from. */
  catchingUp?: true
}

interface Subscriber {
  accepts: (topic: string) => boolean
  after: number
  /** Still replaying: live events reach it through the history, in its rounds. */
  catchingUp: boolean
  /** How its attachment names its filter (inline, or a room_filters row). */
  filter: { topics: TopicFilter } | { ref: number }
  ref?: number
  /** Presence keys it counts under. */
  keys: string[]
  presence: boolean
  grants: readonly string[] | undefined
}

/** workerd refuses attachments over 16 KiB; a filter above this goes to SQLite instead (2 rows written a connection). */
const ATTACHMENT_FILTER_CHARS = 8 * 1024

const decoder = new TextDecoder()
const utf8 = new TextEncoder()
const controlText = (event: string, data: unknown) => decoder.decode(encodeControl(event, data))

/** The smallest filter with the same meaning: requested topics the grants allow, else the grants. */
export const compactFilter = ({ requested, grants }: TopicFilter): TopicFilter =>
  requested && requested.length > 0
    ? { requested: requested.filter((t) => grantsAllow(grants, t)) }
    : grants === undefined
      ? {}
      : { grants }

const readAttachment = (ws: RoomSocket): Attachment | undefined => {
  const a = ws.deserializeAttachment() as Partial<Attachment> | null
  return a && typeof a.after === 'number' && (typeof a.topics === 'object' || typeof a.ref === 'number') ? (a as Attachment) : undefined
}

/**
 * A tenant's room whose history lives in SQLite, for a Durable Object that may hibernate between events: the same
 * publish/resume semantics as `Room` (seqs already held are ignored, a gap is refused unless `rebase`, resume
 * replays or resets by `planResume`), but nothing is kept in memory except the head and each socket's position,
 * and both can be rebuilt from storage and socket attachments when the object wakes.
 */
export class StoredRoom {
  private readonly subscribers = new Map<RoomSocket, Subscriber>()
  private lastSeq: number
  /** Bytes of the frames held (kept as rows come and go; summed once on wake). */
  private bytes: number
  private tenant: string | undefined
  private readonly counter: PresenceCounter
  private lastPresence = ''

  /** @param sockets the sockets still attached after a hibernation (`ctx.getWebSockets()`). */
  constructor(
    private readonly sql: RoomSql,
    private readonly options: StoredRoomOptions,
    sockets: Iterable<RoomSocket> = [],
  ) {
    this.tenant = options.tenant
    this.counter = new PresenceCounter(() => this.broadcastPresence(), options.presenceIntervalMs ?? DEFAULTS.presenceIntervalMs)
    // One row per event: the newest row is never trimmed, so max(seq) is the head. (Rows written are what a room
    // pays for per event — one insert now, one delete when it ages out; see docs/cloudflare.md.)
    sql.exec(`CREATE TABLE IF NOT EXISTS room_events (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, ts REAL NOT NULL, frame TEXT NOT NULL)`)
    sql.exec(`CREATE TABLE IF NOT EXISTS room_filters (id INTEGER PRIMARY KEY, filter TEXT NOT NULL)`)
    this.lastSeq = Number(sql.exec(`SELECT max(seq) AS head FROM room_events`).toArray()[0]?.head ?? 0)
    this.bytes = this.heldBytes()
    // Every event up to the head was broadcast to every socket before the object slept, in the turn that stored it.
    const refs: number[] = []
    for (const ws of sockets) {
      const a = readAttachment(ws)
      const topics = a?.topics ?? (a?.ref !== undefined ? this.storedFilter(a.ref) : undefined)
      if (!a || !topics) continue
      // A socket still replaying goes on from where its last round ended; any other had everything up to the head.
      this.add(ws, topics, a.catchingUp ? a.after : Math.max(a.after, this.lastSeq), a.presence === true, a.ref, a.catchingUp === true)
      if (a.ref !== undefined) refs.push(a.ref)
    }
    // Presence was last broadcast for exactly these sockets (a pending broadcast keeps the object awake).
    this.lastPresence = JSON.stringify(this.presence())
    // Filters of sockets that closed while the object was gone (a crash or reset delivers no close event).
    sql.exec(`DELETE FROM room_filters WHERE id NOT IN (SELECT value FROM json_each(?))`, JSON.stringify(refs))
  }

  private add(ws: RoomSocket, topics: TopicFilter, after: number, presence: boolean, ref: number | undefined, catchingUp = false): Subscriber {
    const keys = presenceKeys(topics)
    const filter = ref !== undefined ? { ref } : { topics }
    const s: Subscriber = { accepts: topicMatcher(topics), after, catchingUp, filter, keys, presence, grants: topics.grants, ...(ref !== undefined ? { ref } : {}) }
    this.subscribers.set(ws, s)
    this.counter.join(keys)
    return s
  }

  /** Subscriber counts per topic, naming only topics that `grants` allows (undefined = all). */
  presence(grants?: readonly string[], tenant?: string): PresenceSnapshot {
    this.tenant ??= tenant
    return this.counter.snapshot(this.tenant ?? '', grants)
  }

  private broadcastPresence() {
    const all = JSON.stringify(this.presence())
    if (all === this.lastPresence) return // joins and leaves cancelled out
    this.lastPresence = all
    // Each subscriber sees only its granted topics: encode once per distinct set of grants.
    const frames = new Map<string, string>()
    for (const [ws, s] of this.subscribers) {
      if (!s.presence) continue
      const key = s.grants ? s.grants.join(',') : '*'
      let frame = frames.get(key)
      if (frame === undefined) frames.set(key, (frame = controlText(EVENTS.presence, this.presence(s.grants))))
      this.send(ws, frame)
    }
  }

  private storedFilter(ref: number): TopicFilter | undefined {
    const row = this.sql.exec(`SELECT filter FROM room_filters WHERE id = ?`, ref).toArray()[0]
    return row ? (JSON.parse(String(row.filter)) as TopicFilter) : undefined
  }

  get head(): number {
    return this.lastSeq
  }

  /** Sockets subscribed. */
  get size(): number {
    return this.subscribers.size
  }

  /** Oldest seq held, for resume decisions. */
  get first(): number | undefined {
    const row = this.sql.exec(`SELECT min(seq) AS first FROM room_events`).toArray()[0]
    return row?.first == null ? undefined : Number(row.first)
  }

  /** Seqs held, oldest first (tests and diagnostics). */
  seqs(): number[] {
    return this.sql.exec(`SELECT seq FROM room_events ORDER BY seq`).toArray().map((r) => Number(r.seq))
  }

  /** Applies a relay batch with `Room.publish` semantics, stores it, then sends each socket what it accepts. */
  publish(body: PublishBody): PublishReply {
    this.tenant ??= body.tenant
    const fresh = body.events.filter((e) => e.seq > this.lastSeq)
    if (fresh.length === 0) return { tenant: body.tenant, head: this.lastSeq }
    const start = fresh[0]!.seq
    const gap = start !== this.lastSeq + 1
    if (gap && !body.rebase) return { tenant: body.tenant, head: this.lastSeq }
    const frames = fresh.map((e) => ({ seq: e.seq, topic: e.topic, frame: frameText(e.seq, e.event ?? e.topic, e.data) }))
    const head = frames[frames.length - 1]!.seq
    const write = () => {
      if (gap) this.delete(`DELETE FROM room_events`) // a gap inside the history would be a silent loss on resume
      for (const [i, e] of frames.entries()) {
        this.sql.exec(`INSERT INTO room_events (seq, topic, ts, frame) VALUES (?, ?, ?, ?)`, e.seq, e.topic, fresh[i]!.ts, e.frame)
        this.bytes += utf8.encode(e.frame).byteLength
      }
      this.trim(head)
    }
    try {
      if (this.options.transaction) this.options.transaction(write)
      else write()
    } catch (err) {
      this.bytes = this.heldBytes() // the transaction rolled back: so does the running total
      throw err
    }
    this.lastSeq = head // only once stored: a failed write leaves the room as it was

    // Subscribers positioned before a rebase gap would miss events silently: tell them to refetch (as Room does).
    const reset = gap ? controlText(EVENTS.reset, { head: start - 1, first: start }) : ''
    for (const [ws, s] of this.subscribers) {
      if (s.catchingUp) continue // it reads these from the history, in its next round
      let out = ''
      if (gap && s.after > 0 && s.after < start - 1) (out += reset), (s.after = start - 1)
      for (const e of frames) {
        if (e.seq <= s.after) continue
        s.after = e.seq
        if (s.accepts(e.topic)) out += e.frame
      }
      if (out) this.send(ws, out)
    }
    return { tenant: body.tenant, head: this.lastSeq }
  }

  /**
   * Replays what the socket missed (or tells it to reset) and adds it to the live set. The replay goes out one round
   * at a time (see ROOM_SOCKET): the first now, each next one when the Worker asks, once its browser has read the
   * last. Until the replay is done, live events reach this socket through the history, in its own rounds.
   */
  connect(ws: RoomSocket, options: SubscribeOptions, tenant?: string): void {
    this.tenant ??= tenant
    this.trim()
    const plan = planResume(options.lastEventId, this.first, this.lastSeq)
    const catchingUp = plan.kind === 'replay' && plan.after < this.lastSeq
    const after = plan.kind === 'replay' ? Math.min(plan.after, this.lastSeq) : this.lastSeq
    const presence = options.presence === true
    // Presence events name only the topics a subscriber's grants allow: keep the grants for those subscribers.
    const topics = presence ? options.topics : compactFilter(options.topics)
    const json = JSON.stringify(topics)
    const ref =
      json.length <= ATTACHMENT_FILTER_CHARS ? undefined : Number(this.sql.exec(`INSERT INTO room_filters (filter) VALUES (?) RETURNING id`, json).toArray()[0]!.id)
    const s = this.add(ws, topics, after, presence, ref, catchingUp)
    this.saveAttachment(ws, s)
    let out = plan.kind === 'reset' ? controlText(EVENTS.reset, { head: this.lastSeq, first: this.first ?? null }) : ''
    if (presence) out += controlText(EVENTS.presence, this.presence(topics.grants))
    if (out && !this.send(ws, out)) return
    if (catchingUp) this.replayRound(ws)
    else this.send(ws, ROOM_SOCKET.live)
  }

  /** The Worker read the last round (ROOM_SOCKET.more): send the next one. */
  more(ws: RoomSocket): void {
    if (this.subscribers.get(ws)?.catchingUp) this.replayRound(ws)
  }

  /** Sends the next round of a socket's replay, then `pause` (more to come) or `live` (done: live from here). */
  private replayRound(ws: RoomSocket): void {
    const s = this.subscribers.get(ws)!
    const first = this.first
    let out = ''
    if (first === undefined || first > s.after + 1) {
      // The history moved past it while it replayed (a slow reader of a busy room): it cannot resume exactly.
      out = controlText(EVENTS.reset, { head: this.lastSeq, first: first ?? null })
      s.after = this.lastSeq
    } else {
      let frames = 0
      for (const row of this.sql.exec(`SELECT seq, topic, frame FROM room_events WHERE seq > ? ORDER BY seq LIMIT ?`, s.after, REPLAY_ROUND_EVENTS)) {
        s.after = Number(row.seq)
        if (!s.accepts(String(row.topic))) continue
        out += String(row.frame)
        if (++frames >= REPLAY_ROUND_EVENTS || out.length >= REPLAY_ROUND_BYTES) break
      }
    }
    s.catchingUp = s.after < this.lastSeq
    this.saveAttachment(ws, s)
    if (out && !this.send(ws, out)) return
    this.send(ws, s.catchingUp ? ROOM_SOCKET.pause : ROOM_SOCKET.live)
  }

  /** What the socket carries across hibernation (its filter unless stored in SQLite, position, replay state). */
  private saveAttachment(ws: RoomSocket, s: Subscriber) {
    ws.serializeAttachment({ ...s.filter, after: s.after, ...(s.presence ? { presence: true } : {}), ...(s.catchingUp ? { catchingUp: true } : {}) } satisfies Attachment)
  }

  /** The socket closed or failed. */
  disconnect(ws: RoomSocket): void {
    this.forget(ws)
  }

  private forget(ws: RoomSocket) {
    const s = this.subscribers.get(ws)
    if (!s) return
    this.subscribers.delete(ws)
    this.counter.leave(s.keys)
    if (s.ref !== undefined) this.sql.exec(`DELETE FROM room_filters WHERE id = ?`, s.ref)
  }

  /** Closes every socket (e.g. before the object deletes its storage). */
  closeAll(code = 1001, reason = 'room closing'): void {
    for (const ws of this.subscribers.keys()) {
      try {
        ws.close(code, reason)
      } catch {
        // already closed
      }
    }
    this.subscribers.clear()
    this.counter.clear()
  }

  /** A socket whose send throws has gone away: forget it (its Worker ends the SSE stream; the client resumes). */
  private send(ws: RoomSocket, message: string): boolean {
    try {
      ws.send(message)
      return true
    } catch {
      this.forget(ws)
      return false
    }
  }

  /**
   * Keeps the newest `historyLimit` events and none older than `maxAgeMs` — except the newest, which records the
   * head — always as a contiguous suffix.
   */
  private trim(head = this.lastSeq) {
    this.delete(`DELETE FROM room_events WHERE seq <= ?`, head - this.options.historyLimit)
    if (this.options.maxAgeMs > 0) {
      const cutoff = (this.options.now ?? Date.now)() - this.options.maxAgeMs
      // Commit times are not strictly ordered by seq: cut at the newest expired seq so no hole opens in the middle.
      this.delete(`DELETE FROM room_events WHERE seq < ? AND seq <= (SELECT max(seq) FROM room_events WHERE ts < ?)`, head, cutoff)
    }
    const maxBytes = this.options.maxBytes ?? DEFAULTS.historyBytes
    while (this.bytes > maxBytes) {
      // Oldest first, a page at a time, up to where the rest fits (never the newest: it records the head).
      let over = this.bytes - maxBytes
      let upTo: number | undefined
      for (const row of this.sql.exec(`SELECT seq, length(CAST(frame AS BLOB)) AS n FROM room_events WHERE seq < ? ORDER BY seq LIMIT 256`, head)) {
        upTo = Number(row.seq)
        over -= Number(row.n)
        if (over <= 0) break
      }
      if (upTo === undefined) break
      this.delete(`DELETE FROM room_events WHERE seq <= ?`, upTo)
    }
  }

  private heldBytes(): number {
    return Number(this.sql.exec(`SELECT sum(length(CAST(frame AS BLOB))) AS bytes FROM room_events`).toArray()[0]?.bytes ?? 0)
  }

  /** Runs a DELETE on room_events and takes the deleted frames' bytes off the running total. */
  private delete(query: string, ...bindings: unknown[]) {
    for (const row of this.sql.exec(`${query} RETURNING length(CAST(frame AS BLOB)) AS n`, ...bindings)) this.bytes -= Number(row.n)
  }
}
