import { ROOM_SOCKET } from '../../../shared/protocol.ts'
import { concatBytes } from '../queue.ts'
import type { CloseReason, Position, Sink } from '../room.ts'
import { grantsAllow, type TopicFilter } from '../topics.ts'

/** A subscriber connection (a hibernatable WebSocket from a Worker): the room writes frames and tags it. */
export interface RoomSocket {
  send(message: string | ArrayBuffer | Uint8Array): void
  close(code?: number, reason?: string): void
  serializeAttachment(value: unknown): void
  deserializeAttachment(): unknown
}

/** What a socket carries across hibernation: its filter (or `ref`, the row holding one too large), where it stands, presence. */
export interface Attachment extends Partial<Position> {
  topics?: TopicFilter
  ref?: number
  after: number
  /** Receives `event: presence` (its filter then keeps its grants, which limit what those events name). */
  presence?: true
}

/** workerd refuses attachments over 16 KiB; a filter above this goes to SQLite instead (2 rows written a connection). */
export const ATTACHMENT_FILTER_CHARS = 8 * 1024

/** The smallest filter with the same meaning: requested topics the grants allow, else the grants. */
export const compactFilter = ({ requested, grants }: TopicFilter): TopicFilter => {
  if (requested && requested.length > 0) return { requested: requested.filter((t) => grantsAllow(grants, t)) }
  return grants === undefined ? {} : { grants }
}

export const readAttachment = (ws: RoomSocket): Attachment | undefined => {
  const a = ws.deserializeAttachment() as Partial<Attachment> | null
  return a && typeof a.after === 'number' && (typeof a.topics === 'object' || typeof a.ref === 'number') ? (a as Attachment) : undefined
}

/**
 * Sinks with frames pending, all sent by one microtask: one per turn of the isolate rather than one per subscriber (a
 * queueMicrotask per subscriber per batch was ~1 µs of the room's thread per delivery, measured with `npm run bench`).
 */
let pending: SocketSink[] = []
const flushPending = () => {
  const sinks = pending
  pending = []
  for (const sink of sinks) sink.flush()
}

/**
 * One subscriber's WebSocket as a room's Sink: a turn's frames leave as one binary message. The Worker owns the browser's queue (it ends a
 * stream that falls behind, closing this socket), so nothing here is ever full; a replay waits for the Worker to ask for each round.
 */
export class SocketSink implements Sink {
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
    if (this.pending.push(chunk) === 1 && pending.push(this) === 1) queueMicrotask(flushPending)
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

  /** Sends the frames written since the last flush as one message. */
  flush(): void {
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
