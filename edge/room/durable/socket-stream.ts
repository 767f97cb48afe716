import { ROOM_SOCKET } from '../../../shared/protocol.ts'
import { encodeText } from '../../../shared/sse.ts'
import type { Sink } from '../room.ts'
import type { ConnectOptions } from '../stub.ts'
import { runStream, type StreamTerms } from '../stream.ts'

/** The client end of a Workers WebSocket (`Response.webSocket`), structurally: no Workers types needed here. */
export interface ClientSocket {
  /** How binary messages arrive; the room sends frames as bytes, read here without a copy as ArrayBuffers. */
  binaryType?: string
  accept(): void
  send(message: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener(type: 'close' | 'error', listener: () => void): void
}

export interface SocketStreamOptions extends ConnectOptions {
  /** Bytes the browser may have queued before the stream is dropped as too slow (it then resumes). */
  queueBytes: number
}

/**
 * Turns the WebSocket a room sends frames on into the browser's SSE stream (runStream). The Worker, not the room, owns what is periodic
 * (heartbeats, the token's expiry), so the room sleeps between events; and the browser's queue, whose reads pace a replay (each round is
 * asked for: ROOM_SOCKET.more). Ends, closing the socket, when the browser leaves, the room goes, the queue overflows or the token expires.
 *
 * This runs for every event and subscriber, so a frame takes the shortest way: the socket's ArrayBuffer goes into the response's queue
 * uncopied, and nothing of ours runs as the response reads it. The stream has no `size` (a call per chunk) and keeps its `pull` parked
 * while live (workerd wraps every pull's result in a promise reaction per chunk); the bytes queued are counted here instead.
 */
export const streamFromSocket = (ws: ClientSocket, terms: StreamTerms, options: SocketStreamOptions): ReadableStream<Uint8Array> => {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let open = true
  /** The room paused a replay: ask for the next round once the browser has read what is queued. */
  let wantMore = false
  /** Until the room says `live`: a replay is paced by our asking, so a full queue then is not slowness. */
  let replaying = true
  let leave = () => {}
  /** Resolves the pull the stream is waiting on, so that its next pull tells us the browser has read everything. */
  let unpark: (() => void) | undefined
  // The bytes queued: sizes of the chunks enqueued, oldest first from `first`. With a high-water mark of 0 the
  // stream's desiredSize is minus its count of unread chunks, and those are always the newest.
  const sizes: number[] = []
  let first = 0
  let bytes = 0
  const queued = () => {
    const unread = -(controller.desiredSize ?? 0)
    if (unread <= 0) {
      sizes.length = first = bytes = 0
      return 0
    }
    while (sizes.length - first > unread) bytes -= sizes[first++]!
    return bytes
  }
  const end = () => {
    if (!open) return
    open = false
    leave()
    unpark?.()
    options.signal?.removeEventListener('abort', end)
    try {
      ws.close(1000, 'stream ended')
    } catch {
      // already closed
    }
    try {
      // Even when too slow: what is queued is bounded by the queue, and the browser resumes after the last event it
      // read; the Worker's stream cannot be cut sooner than its reader takes it anyway.
      controller.close()
    } catch {
      // cancelled by the reader
    }
    options.ended?.()
  }
  /** Queues bytes for the browser; false when it is too far behind (the caller then ends the stream). */
  const put = (chunk: Uint8Array, forced = false) => {
    if (!open) return false
    if (!forced && !replaying && queued() > options.queueBytes) return false
    controller.enqueue(chunk)
    sizes.push(chunk.byteLength)
    bytes += chunk.byteLength
    return true
  }
  const ask = () => {
    wantMore = false
    try {
      ws.send(ROOM_SOCKET.more)
    } catch {
      end()
    }
  }
  const sink: Sink = {
    write: (chunk, forced) => put(chunk, forced),
    close: end,
    get backlog() {
      return queued()
    },
    whenDrained: () => {},
  }
  const onMessage = ({ data }: { data: unknown }) => {
    // The room's frames arrive as bytes; text is a control message (or a frame from a room written before frames were bytes).
    if (typeof data !== 'string') return void (put(new Uint8Array(data as ArrayBuffer)) || end())
    if (data === ROOM_SOCKET.pause) {
      wantMore = true
      if (queued() < options.queueBytes) ask()
      else unpark?.() // the next pull comes once the browser has read all that is queued
      return
    }
    if (data === ROOM_SOCKET.live) return void (replaying = false)
    if (!put(encodeText(data))) end()
  }
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c
        leave = runStream(sink, terms, () => {
          ws.addEventListener('message', onMessage)
          ws.addEventListener('close', end)
          ws.addEventListener('error', end)
          ws.binaryType = 'arraybuffer'
          ws.accept()
          return () => {}
        })
        if (options.signal?.aborted) end()
        else options.signal?.addEventListener('abort', end)
      },
      // Called when the response wants to read and the queue is empty: the browser has taken everything.
      pull() {
        if (wantMore && open) return ask()
        if (!open) return
        // Parked until a replay waits on the browser: meanwhile the stream calls no pull at all.
        return new Promise<void>((resolve) => {
          unpark = () => {
            unpark = undefined
            resolve()
          }
        })
      },
      cancel() {
        end()
      },
    },
    { highWaterMark: 0 },
  )
}
