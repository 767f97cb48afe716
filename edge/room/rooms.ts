import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply, TenantId } from '../../shared/schema.ts'
import { DEFAULTS } from '../../shared/protocol.ts'
import { EVENTS } from '../../shared/protocol.ts'
import type { Log } from '../../shared/log.ts'
import { encodeControl, encodeRetry } from '../../shared/sse.ts'
import { boundedStream, type QueueLimits } from './queue.ts'
import { Room, type Sink, type SubscribeOptions } from './room.ts'

/** A subscription request as it travels to a room (plain data: it may cross into a Durable Object). */
export interface ConnectRequest extends SubscribeOptions {
  retryMs: number
  /** When the token behind the stream expires (ms since epoch): the stream then ends with `event: reauth`. */
  expiresAt?: number
}

/** What an edge handler can do with a tenant's room, wherever the room lives. */
export interface RoomStub {
  publish(body: PublishBody): Promise<PublishReply>
  /**
   * The SSE byte stream for one subscriber; cancelling the stream unsubscribes. `signal` (the browser's request
   * signal) aborts when the client leaves, where the runtime reports it.
   */
  connect(request: ConnectRequest, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>
  /** Subscriber counts per topic, naming only topics that `grants` allows (undefined = all). */
  presence(grants?: readonly string[]): Promise<PresenceSnapshot>
}

/** All that an edge handler knows about where a tenant's room lives. */
export interface Rooms {
  get(tenant: TenantId): RoomStub
  /**
   * Names this set of rooms for the relay (`POST /internal/hello`): rooms in memory take a new one at each start,
   * since they start empty; durable rooms keep theirs.
   */
  readonly instance: string
}

export interface MemoryRoomsOptions {
  historyLimit?: number
  /** Bytes of frames each room keeps for resume. */
  historyBytes?: number
  /** Where a dropped slow subscriber is reported (tenant, bytes it had queued). */
  log?: Log
  heartbeatMs?: number
  /** Bytes a subscriber may have queued before it is dropped as too slow. */
  queueBytes?: number
  /** Frames (events, heartbeats) a subscriber may have queued before it is dropped as too slow. */
  queueEvents?: number
}

/**
 * Turns a room subscription into a byte stream with a queue bounded in bytes and events (see queue.ts). A
 * subscriber that cannot keep up is dropped by the room and its connection closed; it never slows the room.
 */
export const streamFromRoom = (room: Room, request: ConnectRequest, limits: QueueLimits): ReadableStream<Uint8Array> => {
  let unsubscribe = () => {}
  const out = boundedStream(limits, () => unsubscribe())
  let overflowed = false
  const sink: Sink = {
    write(chunk, replay) {
      if (out.push(chunk, replay)) return true
      overflowed = true
      return false
    },
    get backlog() {
      return out.backlog
    },
    whenDrained: (fn) => out.whenDrained(fn),
    close() {
      // The room closes a sink for two reasons: it overflowed (drop now, the client resumes) or the room is
      // shutting down (let the client read what is queued).
      if (overflowed) out.abort()
      else out.end()
    },
  }
  out.push(encodeRetry(request.retryMs), true)
  const stop = room.subscribe(request, sink)
  let expiry: ReturnType<typeof setTimeout> | undefined
  unsubscribe = () => (expiry !== undefined && clearTimeout(expiry), stop())
  const untilExpiry = request.expiresAt === undefined ? Infinity : request.expiresAt - Date.now()
  // (setTimeout cannot wait past 2^31-1 ms, ~24.8 days: a stream is heartbeat-checked long before that.)
  if (untilExpiry <= 2 ** 31 - 1) {
    // Streams must not outlive their token: tell the client to fetch a new one and resume.
    expiry = setTimeout(() => {
      stop()
      out.push(encodeControl(EVENTS.reauth, { reason: 'token expired' }), true)
      out.end()
    }, Math.max(0, untilExpiry))
  }
  return out.stream
}

/** In-process rooms for Node and Deno: one Room per tenant, created on first use, with one shared heartbeat. */
export const memoryRooms = (options: MemoryRoomsOptions = {}) => {
  const historyLimit = options.historyLimit ?? DEFAULTS.historyLimit
  const historyBytes = options.historyBytes ?? DEFAULTS.historyBytes
  const onSlowDrop = (tenant: string, queuedBytes: number) =>
    options.log?.('warn', 'dropped a subscriber too slow to keep up; it resumes from Last-Event-ID', { tenant, queuedBytes })
  const queue: QueueLimits = {
    bytes: options.queueBytes ?? DEFAULTS.subscriberQueueBytes,
    events: options.queueEvents ?? DEFAULTS.subscriberQueueEvents,
  }
  const rooms = new Map<TenantId, Room>()
  const room = (tenant: TenantId) => {
    let r = rooms.get(tenant)
    if (!r) rooms.set(tenant, (r = new Room(tenant, { historyLimit, historyBytes, onSlowDrop })))
    return r
  }
  const timer = setInterval(() => {
    for (const r of rooms.values()) r.heartbeat()
  }, options.heartbeatMs ?? DEFAULTS.heartbeatMs)
  // Do not keep a process alive just for heartbeats (Node/Deno timers both support unref).
  ;(timer as { unref?: () => void }).unref?.()

  return {
    instance: crypto.randomUUID(),
    get: (tenant) => ({
      publish: async (body) => room(tenant).publish(body),
      connect: async (request) => streamFromRoom(room(tenant), request, queue),
      // Asking must not create a room: an unknown tenant simply has nobody connected.
      presence: async (grants) => rooms.get(tenant)?.presence(grants) ?? { tenant, subscribers: 0, topics: {} },
    }),
    /** Direct access for the Node fast path, metrics and tests. */
    room,
    rooms,
    close() {
      clearInterval(timer)
      for (const r of rooms.values()) r.closeAll()
    },
  } satisfies Rooms & Record<string, unknown>
}

export type MemoryRooms = ReturnType<typeof memoryRooms>
