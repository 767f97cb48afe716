import type { History, HistoryBounds, StoredEvent } from '../history.ts'

/**
 * The slice of a Durable Object's SQLite API (`ctx.storage.sql`) a room uses. Structural, so this file needs no
 * Workers types and stays importable from Node (the import-graph test keeps `cloudflare:*` in edge/platform/).
 */
export interface RoomSql {
  exec(query: string, ...bindings: unknown[]): Iterable<Record<string, unknown>> & { toArray(): Record<string, unknown>[] }
}

export interface SqliteHistoryOptions extends HistoryBounds {
  /** Events older than this (by commit time) are dropped; 0 keeps them until the count bound drops them. */
  maxAgeMs: number
  /** Runs the writes of one append atomically (`ctx.storage.transactionSync`). */
  transaction?: <T>(fn: () => T) => T
}

const utf8 = new TextEncoder()

/** A frame as SQLite returns it: a BLOB, or TEXT in rows written before frames were stored as bytes. */
const frameOf = (value: unknown): Uint8Array => (typeof value === 'string' ? utf8.encode(value) : new Uint8Array(value as ArrayBuffer))

/** An exactly sized ArrayBuffer holding the frame (what SQLite binds as a BLOB). */
const blobOf = (frame: Uint8Array): ArrayBuffer =>
  frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength
    ? (frame.buffer as ArrayBuffer)
    : (frame.slice().buffer as ArrayBuffer)

/**
 * A room's history in a Durable Object's SQLite, so resume survives eviction and restarts: one row per event (what a
 * room pays for per event — one insert now, one delete when it ages out; see docs/cloudflare.md).
 */
export class SqliteHistory implements History {
  private lastSeq: number
  /** Bytes of the frames held, kept as rows come and go; -1 until an append needs them (a wake to connect or replay never does). */
  private bytes = -1

  constructor(
    private readonly sql: RoomSql,
    private readonly options: SqliteHistoryOptions,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS room_events (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, ts REAL NOT NULL, frame BLOB NOT NULL)`)
    // The newest row is never trimmed, so max(seq) is the head.
    this.lastSeq = Number(sql.exec(`SELECT max(seq) AS head FROM room_events`).toArray()[0]?.head ?? 0)
  }

  get head(): number {
    return this.lastSeq
  }

  get first(): number | undefined {
    const row = this.sql.exec(`SELECT min(seq) AS first FROM room_events`).toArray()[0]
    return row?.first == null ? undefined : Number(row.first)
  }

  append(events: readonly StoredEvent[], restart: boolean): void {
    if (events.length === 0) return
    const head = events[events.length - 1]!.seq
    const write = () => {
      if (this.bytes < 0) this.bytes = Number(this.sql.exec(`SELECT sum(length(frame)) AS bytes FROM room_events`).toArray()[0]?.bytes ?? 0)
      if (restart) this.delete(`DELETE FROM room_events`)
      for (const e of events) {
        this.sql.exec(`INSERT INTO room_events (seq, topic, ts, frame) VALUES (?, ?, ?, ?)`, e.seq, e.topic, e.ts, blobOf(e.frame))
        this.bytes += e.frame.byteLength
      }
      this.trim(head, events)
    }
    try {
      if (this.options.transaction) this.options.transaction(write)
      else write()
    } catch (err) {
      this.bytes = -1 // the transaction rolled back: the running total is summed again when next needed
      throw err
    }
    this.lastSeq = head // only once stored: a failed write leaves the history as it was
  }

  since(after: number, limit: number): StoredEvent[] {
    return this.sql
      .exec(`SELECT seq, topic, ts, frame FROM room_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, Math.min(limit, 2 ** 31))
      .toArray()
      .map((r) => ({ seq: Number(r.seq), topic: String(r.topic), ts: Number(r.ts), frame: frameOf(r.frame) }))
  }

  /** Keeps a contiguous suffix: the newest `limit` events, none older than `maxAgeMs`, `bytes` of frames, the newest always. */
  private trim(head: number, appended: readonly StoredEvent[]) {
    this.delete(`DELETE FROM room_events WHERE seq <= ?`, head - this.options.limit)
    if (this.options.maxAgeMs > 0) {
      const cutoff = Date.now() - this.options.maxAgeMs
      // Rows are written in about commit order: when neither the oldest row nor an event just appended has
      // expired (the usual case), none has, and the scan of ts below is not needed.
      const oldest = this.sql.exec(`SELECT ts FROM room_events ORDER BY seq LIMIT 1`).toArray()[0]
      if ((oldest && Number(oldest.ts) < cutoff) || appended.some((e) => e.ts < cutoff))
        // Commit times are not strictly ordered by seq: cut at the newest expired seq so no hole opens in the middle.
        this.delete(`DELETE FROM room_events WHERE seq < ? AND seq <= (SELECT max(seq) FROM room_events WHERE ts < ?)`, head, cutoff)
    }
    while (this.bytes > this.options.bytes) {
      // Oldest first, a page at a time, up to where the rest fits (never the newest: it records the head).
      let over = this.bytes - this.options.bytes
      let upTo: number | undefined
      for (const row of this.sql.exec(`SELECT seq, length(frame) AS n FROM room_events WHERE seq < ? ORDER BY seq LIMIT 256`, head)) {
        upTo = Number(row.seq)
        over -= Number(row.n)
        if (over <= 0) break
      }
      if (upTo === undefined) break
      this.delete(`DELETE FROM room_events WHERE seq <= ?`, upTo)
    }
  }

  /** Runs a DELETE on room_events and takes the deleted frames' bytes off the running total. */
  private delete(query: string, ...bindings: unknown[]) {
    for (const row of this.sql.exec(`${query} RETURNING length(frame) AS n`, ...bindings)) this.bytes -= Number(row.n)
  }
}
