import { EVENTS, ROOM_SOCKET } from '../../shared/protocol.ts'
import { encodeControl, encodeRetry, encodeText, HEARTBEAT } from '../../shared/sse.ts'
import type { ConnectRequest } from './rooms.ts'

/** The client end of a Workers WebSocket (`Response.webSocket`), structurally: no Workers types needed here. */
export interface ClientSocket {
  accept(): void
  send(message: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener(type: 'close' | 'error', listener: () => void): void
}

export interface SocketStreamOptions {
  heartbeatMs: number
  /** Bytes the browser may have queued before the stream is dropped as too slow (it then resumes). */
  queueBytes: number
  /** Aborts when the browser leaves (`request.signal` with the `enable_request_signal` flag). */
  signal?: AbortSignal
}

/**
 * Turns the WebSocket a room sends frames on into the browser's SSE byte stream. The Worker, not the room, owns
 * everything periodic — heartbeats, the token's expiry — so the room stays asleep between events. Ends (and
 * closes the socket, which tells the room) when the browser leaves, the room goes away, the queue overflows or
 * the token expires.
 */
export const streamFromSocket = (ws: ClientSocket, request: ConnectRequest, options: SocketStreamOptions) => {
  let end = () => {}
  /** The room paused a replay: ask for the next round once the browser has read what is queued. */
  let wantMore = false
  /** Until the room says `live`: a replay's rounds are paced by our asking, so a full queue then is not slowness. */
  let replaying = true
  let askIfRead = () => {}
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        askIfRead = () => {
          if (!wantMore || (controller.desiredSize ?? 0) <= 0) return
          wantMore = false
          try {
            ws.send(ROOM_SOCKET.more)
          } catch {
            end()
          }
        }
        let open = true
        const timers: ReturnType<typeof setTimeout>[] = []
        end = () => {
          if (!open) return
          open = false
          timers.forEach(clearTimeout)
          options.signal?.removeEventListener('abort', end)
          try {
            ws.close(1000, 'stream ended')
          } catch {
            // already closed
          }
          try {
            controller.close()
          } catch {
            // cancelled by the reader
          }
        }
        const write = (chunk: Uint8Array) => {
          if (!open) return
          if (!replaying && (controller.desiredSize ?? 0) < 0) return end() // too slow: it resumes with Last-Event-ID
          controller.enqueue(chunk)
        }
        write(encodeRetry(request.retryMs))
        ws.addEventListener('message', ({ data }) => {
          if (data === ROOM_SOCKET.pause) return ((wantMore = true), askIfRead())
          if (data === ROOM_SOCKET.live) return void (replaying = false)
          write(typeof data === 'string' ? encodeText(data) : new Uint8Array(data as ArrayBuffer))
        })
        ws.addEventListener('close', () => end())
        ws.addEventListener('error', () => end())
        ws.accept()
        // A write is also how a disconnect is noticed when no request signal is available.
        timers.push(setInterval(() => write(HEARTBEAT), options.heartbeatMs))
        const untilExpiry = request.expiresAt === undefined ? Infinity : request.expiresAt - Date.now()
        if (untilExpiry <= 2 ** 31 - 1)
          // Streams must not outlive their token: tell the client to fetch a new one and resume.
          timers.push(
            setTimeout(() => {
              write(encodeControl(EVENTS.reauth, { reason: 'token expired' }))
              end()
            }, Math.max(0, untilExpiry)),
          )
        if (options.signal?.aborted) end()
        else options.signal?.addEventListener('abort', end)
      },
      pull() {
        askIfRead()
      },
      cancel() {
        end()
      },
    },
    { highWaterMark: options.queueBytes, size: (chunk) => chunk.byteLength },
  )
}
