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
 */
export const streamFromSocket = (ws: ClientSocket, terms: StreamTerms, options: SocketStreamOptions): ReadableStream<Uint8Array> => {
  let sink: Sink | undefined
  let askIfRead = () => {}
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true
        /** The room paused a replay: ask for the next round once the browser has read what is queued. */
        let wantMore = false
        /** Until the room says `live`: a replay is paced by our asking, so a full queue then is not slowness. */
        let replaying = true
        let leave = () => {}
        const end = () => {
          if (!open) return
          open = false
          leave()
          options.signal?.removeEventListener('abort', end)
          try {
            ws.close(1000, 'stream ended')
          } catch {
            // already closed
          }
          try {
            // Even when too slow: what is queued is bounded by the queue, and the browser resumes after the last
            // event it read; the Worker's stream cannot be cut sooner than its reader takes it anyway.
            controller.close()
          } catch {
            // cancelled by the reader
          }
          options.ended?.()
        }
        sink = {
          write(chunk, forced) {
            if (!open) return false
            if (!forced && !replaying && (controller.desiredSize ?? 0) < 0) return false
            controller.enqueue(chunk)
            return true
          },
          close: end,
          get backlog() {
            return Math.max(0, options.queueBytes - (controller.desiredSize ?? 0))
          },
          whenDrained: () => {},
        }
        askIfRead = () => {
          if (!wantMore || (controller.desiredSize ?? 0) <= 0) return
          wantMore = false
          try {
            ws.send(ROOM_SOCKET.more)
          } catch {
            end()
          }
        }
        const room = sink
        leave = runStream(room, terms, () => {
          ws.addEventListener('message', ({ data }) => {
            if (data === ROOM_SOCKET.pause) return ((wantMore = true), askIfRead())
            if (data === ROOM_SOCKET.live) return void (replaying = false)
            // The room's frames arrive as bytes (text from rooms written before frames were stored as bytes).
            if (!room.write(typeof data === 'string' ? encodeText(data) : new Uint8Array(data as ArrayBuffer))) end()
          })
          ws.addEventListener('close', end)
          ws.addEventListener('error', end)
          ws.binaryType = 'arraybuffer'
          ws.accept()
          return () => {}
        })
        if (options.signal?.aborted) end()
        else options.signal?.addEventListener('abort', end)
      },
      pull() {
        askIfRead()
      },
      cancel() {
        sink?.close('slow')
      },
    },
    { highWaterMark: options.queueBytes, size: (chunk) => chunk.byteLength },
  )
}
