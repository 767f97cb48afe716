import type { ServerResponse } from 'node:http'
import type { Context } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { SSE_HEADERS, type StreamServer } from '../app.ts'
import { RelayError } from '../../shared/errors.ts'
import type { EdgeSettings } from '../config.ts'
import { SUBSCRIBER_QUEUE_EVENTS } from '../room/queue.ts'
import type { CloseReason, Sink } from '../room/room.ts'
import type { LocalRooms } from '../room/stub.ts'

/**
 * The Node fast path for SSE. The portable path (a ReadableStream pumped through a Web-Streams reader) costs ~12–22 µs a subscriber write,
 * against ~3–10 µs for `res.write` (`npm run bench`). Here frames leave with one socket write per client per event-loop turn, the bytes
 * (chunk framing included) built once for all the clients that get the same frames.
 */

/** Sinks holding frames for the next flush; one setImmediate flushes them all after the current I/O phase. */
const dirty: NodeSink[] = []
let scheduled = false

const CRLF = Buffer.from('\r\n')

/** Subscribers of a room usually get the same frames in a turn: bytes built once per distinct list (by identity) and flush. */
type Entry = { parts: Uint8Array[]; plain?: Uint8Array; chunk?: Uint8Array }
type WriteCache = Map<Uint8Array, Entry[]>

const entry = (parts: Uint8Array[], cache: WriteCache): Entry => {
  const candidates = cache.get(parts[0]!)
  for (const c of candidates ?? []) {
    if (c.parts.length !== parts.length) continue
    let same = true
    for (let i = 1; i < parts.length && same; i++) same = c.parts[i] === parts[i]
    if (same) return c
  }
  const e: Entry = { parts }
  if (candidates) candidates.push(e)
  else cache.set(parts[0]!, [e])
  return e
}

/** The frames as one body buffer (for res.write). */
const plain = (parts: Uint8Array[], cache: WriteCache): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  const e = entry(parts, cache)
  return (e.plain ??= Buffer.concat(parts))
}

/** The frames as one HTTP/1.1 chunk, framing included (for a direct socket write). */
const chunk = (parts: Uint8Array[], cache: WriteCache): Uint8Array => {
  const e = entry(parts, cache)
  if (!e.chunk) {
    const size = parts.reduce((n, p) => n + p.byteLength, 0)
    e.chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), ...parts, CRLF])
  }
  return e.chunk
}

/** Told after each flush how many subscribers it wrote to and how long that took, in ms (metrics, the bench). */
export type FlushObserver = (subscribers: number, ms: number) => void
const observers = new Set<FlushObserver>()

/** Observes every flush of this process (all Node edges in it share one flush); returns the unsubscribe. */
export const observeFlushes = (fn: FlushObserver) => {
  observers.add(fn)
  return () => void observers.delete(fn)
}

const flushAll = () => {
  scheduled = false
  const t0 = observers.size ? performance.now() : 0
  const subscribers = dirty.length
  const cache: WriteCache = new Map()
  // A flush cannot add sinks (writes happen in room code, not here), so iterating by index is safe.
  for (let i = 0; i < dirty.length; i++) dirty[i]!.flush(cache)
  dirty.length = 0
  if (observers.size) {
    const ms = performance.now() - t0
    for (const o of observers) o(subscribers, ms)
  }
}

/** One subscriber on Node: frames queue until the end of the turn, then leave in one `res.write`. */
export class NodeSink implements Sink {
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private open = true
  /** The replay's next round, run once the socket has taken what we wrote (see whenDrained). */
  private drained: (() => void) | undefined

  constructor(
    private readonly res: ServerResponse,
    /** Bytes the response may hold unsent (Node's buffer + our pending frames) before the subscriber is dropped. */
    private readonly queueBytes: number,
    /** Frames that may wait for the next flush (a turn that owes one client more than this is a runaway). */
    private readonly queueEvents: number,
    /** Sends the response head; called once, before the first body byte (default: plain SSE headers). */
    private head: (() => void) | undefined = () => res.writeHead(200, SSE_HEADERS),
  ) {}

  write(chunk: Uint8Array, forced = false): boolean {
    if (!this.open) return false
    // Same rule as the ReadableStream path: refuse once the queue is over its bound (the room then drops us).
    if (!forced && (this.backlog > this.queueBytes || this.pending.length >= this.queueEvents)) return false
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

  /** Node's buffer (socket included) plus frames waiting for this turn's flush. */
  get backlog(): number {
    return this.res.writableLength + this.pendingBytes
  }

  whenDrained(fn: () => void): void {
    this.drained = fn
    if (this.pending.length === 0) this.afterFlush()
  }

  /** Runs the waiting replay round once the socket wants more: now if it is below its high-water mark, else at 'drain'. */
  private afterFlush(): void {
    const next = this.drained
    if (!next || !this.open) return
    this.drained = undefined
    const socket = this.res.socket
    if (socket?.writableNeedDrain) socket.once('drain', next)
    else setImmediate(next)
  }

  /** Writes what is pending (called by the shared flush, and before a clean end). */
  flush(cache: WriteCache = new Map()): void {
    if (this.pending.length === 0) return
    const parts = this.pending
    this.pending = []
    this.pendingBytes = 0
    if (!this.open) return
    if (this.head) {
      this.head()
      this.head = undefined // it may hold the request's whole context: let it go for the stream's lifetime
      this.res.flushHeaders()
    }
    // Chunked HTTP/1.1 (the usual case): we frame the chunk ourselves and write to the socket, skipping
    // ServerResponse's per-write cork, four buffer sends and nextTick uncork. Node writes the final `0` chunk at
    // res.end(), after ours, on the same socket. Otherwise (HTTP/1.0, or no socket yet) res.write does it.
    const socket = this.res.chunkedEncoding ? this.res.socket : null
    if (socket && this.res.headersSent && !this.res.writableEnded) socket.write(chunk(parts, cache))
    else this.res.write(plain(parts, cache))
    if (this.drained) this.afterFlush()
  }

  close(reason: CloseReason): void {
    if (!this.open) return
    if (reason === 'slow') {
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
    this.drained = undefined
  }
}

/** How the Node edge serves streams (createApp's `streams`): it writes the SSE response on @hono/node-server's object itself. */
export const nodeStreams =
  (rooms: LocalRooms, settings: Pick<EdgeSettings, 'SUBSCRIBER_QUEUE_BYTES'>): StreamServer =>
  (c, tenant, request, ended) => {
    const res = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
    if (!res || typeof res.writeHead !== 'function' || res.headersSent)
      throw new RelayError('INTERNAL', 'the Node edge serves streams through @hono/node-server only')
    // The client may have hung up while its token was checked: its 'close' has fired already and will not again.
    if (res.closed || res.destroyed) {
      ended()
      return RESPONSE_ALREADY_SENT
    }
    const sink = new NodeSink(res, settings.SUBSCRIBER_QUEUE_BYTES, SUBSCRIBER_QUEUE_EVENTS, headFrom(c, res))
    let detach = () => {}
    // Listen before attaching: a subscriber is never in a room without a way to leave it.
    res.once('close', () => {
      sink.gone()
      detach()
      ended()
    })
    detach = rooms.get(tenant).attach(request, sink)
    return RESPONSE_ALREADY_SENT
  }

/**
 * The head goes out at the first flush, once every middleware has run: headers they set (CORS, Vary, …) land on `c.res` and go with ours.
 * Built here, not inline: closures of one scope share one V8 context, so an inline head would keep the whole Hono Context (~2 KB) alive
 * through the close listener for the stream's lifetime.
 */
const headFrom = (c: Context, res: ServerResponse) => () => {
  const headers: Record<string, string | string[]> = { ...SSE_HEADERS }
  for (const [k, v] of c.res.headers) if (!SKIP.has(k)) headers[k] = k === 'set-cookie' ? c.res.headers.getSetCookie() : v
  res.writeHead(200, headers)
}

/** Headers of `c.res` not to copy: the adapter's marker, and what SSE_HEADERS sets or the stream decides. */
const SKIP = new Set([...RESPONSE_ALREADY_SENT.headers.keys(), 'content-type', 'content-length', 'transfer-encoding'])
