/** Frames a subscriber may have queued besides SUBSCRIBER_QUEUE_BYTES: a guard against a runaway of tiny frames (Mercure's figure). */
export const SUBSCRIBER_QUEUE_EVENTS = 1_000

/** Bounds of one subscriber's queue: whichever is reached first makes the subscriber too slow. */
export interface QueueLimits {
  bytes: number
  /** Chunks (event frames, heartbeats, control frames). */
  events: number
}

/** The chunks as one array (the chunk itself when there is one). */
export const concatBytes = (chunks: readonly Uint8Array[]): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let at = 0
  for (const c of chunks) out.set(c, at), (at += c.byteLength)
  return out
}

/**
 * One subscriber's outgoing bytes: a queue bounded in bytes AND events in front of a pull-based ReadableStream with no buffer of its own
 * (highWaterMark 0): bytes leave only when the consumer asks, so the queue measures exactly how far this subscriber is behind. A push
 * over a bound is refused; the caller then `abort()`s, which errors the stream so the connection is torn down at once (the client resumes).
 */
export const boundedStream = (limits: QueueLimits, onEnd: () => void) => {
  let over = false
  /** Once, however the stream ends: read to its end, aborted as too slow, or cancelled by the consumer. */
  const finish = () => {
    if (over) return
    over = true
    onEnd()
  }
  let queue: Uint8Array[] = []
  /** All bytes queued, forced or not. */
  let queuedBytes = 0
  /** Called at the consumer's next read once the queue is empty (a replay's next round). */
  let drained: (() => void) | undefined
  /** Bounded part of the queue: what was pushed without `force` since the consumer last read. */
  let bytes = 0
  let events = 0
  let ending = false
  let done = false
  let wake: (() => void) | undefined
  let controller!: ReadableStreamDefaultController<Uint8Array>

  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c
      },
      async pull(c) {
        for (;;) {
          if (done) return
          if (queue.length === 0 && drained) {
            // The consumer took everything: a replay writes its next round now (synchronously, into `queue`).
            const next = drained
            drained = undefined
            next()
          }
          if (queue.length > 0 || ending || done) break
          await new Promise<void>((resolve) => (wake = resolve))
        }
        if (done) return
        if (queue.length > 0) {
          // One write per pull, not one per frame: a subscriber that fell behind catches up in a few syscalls.
          c.enqueue(concatBytes(queue))
          queue = []
          queuedBytes = bytes = events = 0
        }
        if (ending && queue.length === 0) {
          done = true
          c.close()
          finish()
        }
      },
      cancel() {
        done = true
        queue = []
        drained = undefined
        wake?.()
        finish()
      },
    },
    { highWaterMark: 0 },
  )

  const poke = () => {
    const w = wake
    wake = undefined
    w?.()
  }

  return {
    stream,
    /**
     * Queues a chunk; false (nothing queued) over a bound or after the end. `force` skips the bounds for what is bounded elsewhere
     * (`retry:`, a replay, the final `reauth`), so that a resume from far back is never mistaken for a slow subscriber.
     */
    push(chunk: Uint8Array, force = false): boolean {
      if (done || ending) return false
      if (!force) {
        if (events + 1 > limits.events || bytes + chunk.byteLength > limits.bytes) return false
        events++
        bytes += chunk.byteLength
      }
      queue.push(chunk)
      queuedBytes += chunk.byteLength
      poke()
      return true
    },
    /** Bytes queued and not yet read by the consumer. */
    get backlog() {
      return queuedBytes
    },
    /** Calls `fn` once, at the consumer's next read after the queue emptied. */
    whenDrained(fn: () => void): void {
      if (done) return
      drained = fn
      if (queue.length === 0) poke()
    },
    /** Ends the stream after what is queued has been read. */
    end(): void {
      if (done || ending) return
      ending = true
      poke()
    },
    /** Drops the subscriber now: discards the queue and errors the stream (the connection closes). */
    abort(): void {
      if (done) return
      done = true
      queue = []
      drained = undefined
      queuedBytes = bytes = events = 0
      poke()
      controller.error(new Error('subscriber too slow: queue full'))
      finish()
    },
    /** The bounded part of the queue (live frames not yet read by the consumer). */
    get queued() {
      return { bytes, events }
    },
  }
}
