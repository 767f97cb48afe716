import type { ServerResponse } from 'node:http'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { SSE_HEADERS, type StreamServer } from '../app.ts'
import { attachSubscriber } from '../room/attach.ts'
import type { Sink } from '../room/room.ts'
import type { MemoryRooms } from '../room/rooms.ts'
import { DEFAULTS } from '../../shared/protocol.ts'

/**
 * The Node fast path for SSE. The portable path hands Hono a ReadableStream, and @hono/node-server pumps it into
 * the ServerResponse through a Web-Streams reader: ~12–22 µs per subscriber write, against ~3–10 µs for a plain
 * `res.write` (measured, see docs/performance.md). Here a room's frames — encoded once per room — go to
 * `res.write` directly, and all frames due to one client in one event-loop turn leave in one write.
 */

/** Sinks holding frames for the next flush; one setImmediate flushes them all after the current I/O phase. */
const dirty: NodeSink[] = []
let scheduled = false

/**
 * Subscribers of one room usually get the same frames in a turn: join each distinct list once per flush, not once
 * per subscriber. Keyed by the first frame; a hit needs the same frames in the same order (compared by identity).
 */
type JoinCache = Map<Uint8Array, { parts: Uint8Array[]; joined: Uint8Array }[]>

const join = (parts: Uint8Array[], cache: JoinCache): Uint8Array => {
  const candidates = cache.get(parts[0]!)
  if (candidates) {
    for (const c of candidates) {
      if (c.parts.length !== parts.length) continue
      let same = true
      for (let i = 1; i < parts.length && same; i++) same = c.parts[i] === parts[i]
      if (same) return c.joined
    }
  }
  const joined = Buffer.concat(parts)
  if (candidates) candidates.push({ parts, joined })
  else cache.set(parts[0]!, [{ parts, joined }])
  return joined
}

const flushAll = () => {
  scheduled = false
  const cache: JoinCache = new Map()
  // A flush cannot add sinks (writes happen in room code, not here), so iterating by index is safe.
  for (let i = 0; i < dirty.length; i++) dirty[i]!.flush(cache)
  dirty.length = 0
}

/** One subscriber on Node: frames queue until the end of the turn, then leave in one `res.write`. */
export class NodeSink implements Sink {
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private open = true
  /** Set when a write was refused: the close that follows is a drop, not a clean end. */
  private overflowed = false
  /** While the room replays history into us (inside subscribe): bounded by the history, so never "too slow". */
  replaying = true

  constructor(
    private readonly res: ServerResponse,
    /** Bytes the response may hold unsent (Node's buffer + our pending frames) before the subscriber is dropped. */
    private readonly queueBytes: number,
    /** Frames that may wait for the next flush (a turn that owes one client more than this is a runaway). */
    private readonly queueEvents = DEFAULTS.subscriberQueueEvents,
  ) {}

  write(chunk: Uint8Array): boolean {
    if (!this.open) return false
    // Same rule as the ReadableStream path: refuse once the queue is over its bound (the room then drops us).
    if (!this.replaying && (this.res.writableLength + this.pendingBytes > this.queueBytes || this.pending.length >= this.queueEvents)) {
      this.overflowed = true
      return false
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.byteLength
    if (this.pending.length === 1) {
      dirty.push(this)
      if (!scheduled) {
        scheduled = true
        setImmediate(flushAll)
      }
    }
    return true
  }

  /** Writes what is pending (called by the shared flush, and before a clean end). */
  flush(cache: JoinCache = new Map()): void {
    const n = this.pending.length
    if (n === 0) return
    const data = n === 1 ? this.pending[0]! : join(this.pending, cache)
    this.pending = []
    this.pendingBytes = 0
    if (this.open) this.res.write(data)
  }

  close(): void {
    if (!this.open) return
    if (this.overflowed) {
      // Too slow: cut it now rather than make it read megabytes of stale frames first. Its client reconnects with
      // the Last-Event-ID it last parsed and resumes exactly from the room's history.
      this.gone()
      this.res.destroy()
      return
    }
    this.flush()
    this.open = false
    this.res.end()
  }

  /** The client left (or we cut it): drop pending frames, write nothing more. */
  gone(): void {
    this.open = false
    this.pending = []
    this.pendingBytes = 0
  }
}

/**
 * A StreamServer for createApp on @hono/node-server: writes the SSE response itself and tells the adapter so
 * (RESPONSE_ALREADY_SENT). Falls back to the portable path when there is no Node response to write to (e.g. a
 * direct `app.fetch` call).
 */
export const nodeStreamServer =
  (rooms: MemoryRooms, queue: { bytes: number; events: number }): StreamServer =>
  (c, tenant, request, ended) => {
    const res = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
    if (!res || typeof res.writeHead !== 'function' || res.headersSent) return undefined
    // The headers go out with the first flush (retry: and any replay), in one packet.
    res.writeHead(200, SSE_HEADERS)
    const sink = new NodeSink(res, queue.bytes)
    const detach = attachSubscriber(rooms.room(tenant), request, sink)
    sink.replaying = false // subscribe() replays synchronously: from here on frames are live
    res.once('close', () => {
      sink.gone()
      detach()
      ended()
    })
    return RESPONSE_ALREADY_SENT
  }
