import { EVENTS } from '../../shared/protocol.ts'
import { encodeControl, encodeRetry } from '../../shared/sse.ts'
import type { Room, Sink } from './room.ts'
import type { ConnectRequest } from './rooms.ts'

/**
 * Attaches one subscriber's sink to a room with the stream semantics every transport shares (the same as
 * `streamFromRoom`): `retry:` first, replay then live, and at token expiry `event: reauth` and the end of the stream.
 * Returns the function that detaches it (call it when the client leaves).
 */
export const attachSubscriber = (room: Room, request: ConnectRequest, sink: Sink): (() => void) => {
  sink.write(encodeRetry(request.retryMs))
  const stop = room.subscribe(request, sink)
  let expiry: ReturnType<typeof setTimeout> | undefined
  const untilExpiry = request.expiresAt === undefined ? Infinity : request.expiresAt - Date.now()
  // (setTimeout cannot wait past 2^31-1 ms, ~24.8 days: a stream is heartbeat-checked long before that.)
  if (untilExpiry <= 2 ** 31 - 1) {
    // Streams must not outlive their token: tell the client to fetch a new one and resume.
    expiry = setTimeout(() => {
      stop()
      sink.write(encodeControl(EVENTS.reauth, { reason: 'token expired' }))
      sink.close()
    }, Math.max(0, untilExpiry))
  }
  return () => {
    clearTimeout(expiry)
    stop()
  }
}
