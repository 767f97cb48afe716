import { EVENTS, RETRY_JITTER, RETRY_MS, type ReauthPayload } from '../../shared/protocol.ts'
import { encodeControl, encodeRetry, HEARTBEAT } from '../../shared/sse.ts'
import { boundedStream, type QueueLimits } from './queue.ts'
import type { Sink } from './room.ts'

/** What the life of one stream needs to know beyond its subscription. */
export interface StreamTerms {
  /** `retry:` sent first: how long EventSource waits before reconnecting. */
  retryMs: number
  /** When the token behind the stream expires (ms since epoch): the stream then ends with `event: reauth`. */
  expiresAt?: number
  /** A comment line this often, for a stream that beats on its own (a Worker's: its room sleeps); memory rooms use Room.heartbeat. */
  heartbeatMs?: number
}

const REAUTH = encodeControl(EVENTS.reauth, { reason: 'token expired' } satisfies ReauthPayload)

/**
 * The `retry:` for one stream: RETRY_MS × [1, 1 + RETRY_JITTER). When a room restarts (a deploy, an eviction) or an
 * edge process does, every browser on it loses its stream at the same moment; with one shared `retry:` they would all
 * come back in the same millisecond. Spread over half a second, the reconnects queue less at the room, whose replays
 * from history run one after another.
 */
export const jitteredRetryMs = (random: () => number = Math.random): number => RETRY_MS + Math.floor(RETRY_MS * RETRY_JITTER * random())

/**
 * The life of one SSE stream, whatever carries it: `retry:` first, then what `subscribe` brings (replay, then live), heartbeats when asked,
 * and at the token's expiry `event: reauth` (delivered however full the queue) and the end. Returns the function to call when the client
 * leaves; `subscribe` returns the one that detaches it from its room.
 */
export const runStream = (sink: Sink, terms: StreamTerms, subscribe: () => () => void): (() => void) => {
  sink.write(encodeRetry(terms.retryMs), true)
  let detach: (() => void) | undefined = subscribe()
  const timers: ReturnType<typeof setTimeout>[] = []
  const stop = () => {
    timers.forEach(clearTimeout)
    detach?.()
    detach = undefined
  }
  // Streams must not outlive their token: tell the client to fetch a new one and resume.
  const expire = () => {
    stop()
    sink.write(REAUTH, true)
    sink.close('reauth')
  }
  // A write is also how a client that left is noticed where nothing else reports it.
  const beat = () => {
    if (sink.write(HEARTBEAT)) return
    stop()
    sink.close('slow')
  }
  const untilExpiry = terms.expiresAt === undefined ? Infinity : terms.expiresAt - Date.now()
  // (setTimeout cannot wait past 2^31-1 ms, ~24.8 days: a stream is heartbeat-checked long before that.)
  if (untilExpiry <= 2 ** 31 - 1) timers.push(setTimeout(expire, Math.max(0, untilExpiry)))
  if (terms.heartbeatMs !== undefined) timers.push(setInterval(beat, terms.heartbeatMs))
  return stop
}

/**
 * A stream as a ReadableStream (the portable path: Deno, anything served by `fetch`), its queue bounded in bytes and events (queue.ts).
 * `attach` returns the function that detaches the sink; when the stream ends for any reason that runs, then `ended`.
 */
export const readableSink = (limits: QueueLimits, attach: (sink: Sink) => () => void, ended?: () => void): ReadableStream<Uint8Array> => {
  let leave = () => {}
  let over = false
  const out = boundedStream(limits, () => {
    over = true
    leave()
    ended?.()
  })
  const sink: Sink = {
    write: (chunk, forced) => out.push(chunk, forced),
    close(reason) {
      // Dropped as too slow: cut it now. Ended by the server or by its token: let it read what is queued first.
      if (reason === 'slow') out.abort()
      else out.end()
    },
    get backlog() {
      return out.backlog
    },
    whenDrained: (fn) => out.whenDrained(fn),
  }
  leave = attach(sink)
  if (over) leave() // it ended while attaching (dropped during its first writes)
  return out.stream
}
