import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply, TenantId } from '../../shared/schema.ts'
import { DEFAULTS } from '../../shared/protocol.ts'
import { EVENTS } from '../../shared/protocol.ts'
import { encodeControl, encodeRetry } from '../../shared/sse.ts'
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
}

export interface MemoryRoomsOptions {
  historyLimit?: number
  heartbeatMs?: number
  /** Bytes a subscriber may have queued before it is dropped as too slow. */
  queueBytes?: number
}

/** Turns a room subscription into a byte stream with a bounded queue. */
export const streamFromRoom = (room: Room, request: ConnectRequest, queueBytes: number): ReadableStream<Uint8Array> => {
  let unsubscribe = () => {}
  let expiry: ReturnType<typeof setTimeout> | undefined
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true
        const sink: Sink = {
          write(chunk) {
            if (!open) return false
            if ((controller.desiredSize ?? 0) < 0) return false // queue over its byte bound: too slow
            controller.enqueue(chunk)
            return true
          },
          close() {
            if (!open) return
            open = false
            controller.close()
          },
        }
        sink.write(encodeRetry(request.retryMs))
        const stop = room.subscribe(request, sink)
        unsubscribe = () => (expiry !== undefined && clearTimeout(expiry), stop())
        const untilExpiry = request.expiresAt === undefined ? Infinity : request.expiresAt - Date.now()
        // (setTimeout cannot wait past 2^31-1 ms, ~24.8 days: a stream is heartbeat-checked long before that.)
        if (untilExpiry <= 2 ** 31 - 1) {
          // Streams must not outlive their token: tell the client to fetch a new one and resume.
          expiry = setTimeout(() => {
            stop()
            controller.enqueue(encodeControl(EVENTS.reauth, { reason: 'token expired' }))
            sink.close()
          }, Math.max(0, untilExpiry))
        }
      },
      cancel() {
        unsubscribe()
      },
    },
    { highWaterMark: queueBytes, size: (chunk) => chunk.byteLength },
  )
}

/** In-process rooms for Node and Deno: one Room per tenant, created on first use, with one shared heartbeat. */
export const memoryRooms = (options: MemoryRoomsOptions = {}) => {
  const historyLimit = options.historyLimit ?? DEFAULTS.historyLimit
  const queueBytes = options.queueBytes ?? DEFAULTS.subscriberQueueBytes
  const rooms = new Map<TenantId, Room>()
  const room = (tenant: TenantId) => {
    let r = rooms.get(tenant)
    if (!r) rooms.set(tenant, (r = new Room(tenant, { historyLimit })))
    return r
  }
  const timer = setInterval(() => {
    for (const r of rooms.values()) r.heartbeat()
  }, options.heartbeatMs ?? DEFAULTS.heartbeatMs)
  // Do not keep a process alive just for heartbeats (Node/Deno timers both support unref).
  ;(timer as { unref?: () => void }).unref?.()

  return {
    get: (tenant) => ({
      publish: async (body) => room(tenant).publish(body),
      connect: async (request) => streamFromRoom(room(tenant), request, queueBytes),
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
