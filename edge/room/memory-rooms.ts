import type { Log } from '../../shared/log.ts'
import type { TenantId, WireEvent } from '../../shared/schema.ts'
import type { EdgeSettings } from '../config.ts'
import { ArrayHistory } from './history.ts'
import { SUBSCRIBER_QUEUE_EVENTS, type QueueLimits } from './queue.ts'
import { Room, type Sink } from './room.ts'
import { readableSink, runStream } from './stream.ts'
import type { ConnectOptions, ConnectRequest, LocalRooms, RoomsObserver } from './stub.ts'

export type MemoryRoomsSettings = Pick<EdgeSettings, 'HISTORY_LIMIT' | 'HISTORY_MAX_BYTES' | 'HEARTBEAT_MS' | 'SUBSCRIBER_QUEUE_BYTES'>

export interface MemoryRoomsHooks {
  /** Where a dropped slow subscriber is reported (tenant, bytes it had queued). */
  log?: Log
  observe?: RoomsObserver
}

/** What every set of rooms in this process shares (memory rooms, KV rooms' copies): queue bounds, the slow-drop log. */
export const localRoomParts = (settings: Pick<EdgeSettings, 'SUBSCRIBER_QUEUE_BYTES'>, log: Log | undefined) => ({
  queue: { bytes: settings.SUBSCRIBER_QUEUE_BYTES, events: SUBSCRIBER_QUEUE_EVENTS } satisfies QueueLimits,
  onSlowDrop: (tenant: string, queuedBytes: number) =>
    log?.('warn', 'dropped a subscriber too slow to keep up; it resumes from Last-Event-ID', { tenant, queuedBytes }),
})

/** One heartbeat for all the rooms of this process, every `ms`; it does not keep the process alive. */
export const heartbeats = (ms: number, rooms: () => Iterable<Room>) => {
  const timer = setInterval(() => {
    for (const r of rooms()) r.heartbeat()
  }, ms)
  // Node and Deno timers both support unref.
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}

/** In-process rooms for Node and Deno: one Room per tenant, created on first use, with one shared heartbeat. */
export const memoryRooms = (settings: MemoryRoomsSettings, { log, observe }: MemoryRoomsHooks = {}) => {
  const { queue, onSlowDrop } = localRoomParts(settings, log)
  const rooms = new Map<TenantId, Room>()
  const bounds = { limit: settings.HISTORY_LIMIT, bytes: settings.HISTORY_MAX_BYTES }
  const room = (tenant: TenantId) => {
    let r = rooms.get(tenant)
    if (!r) rooms.set(tenant, (r = new Room(tenant, { history: new ArrayHistory(bounds), onSlowDrop })))
    return r
  }
  const attach = (tenant: TenantId, request: ConnectRequest, sink: Sink) => {
    observe?.connected(tenant, request.lastEventId !== undefined)
    const r = room(tenant)
    return runStream(sink, request, () => r.subscribe(request, sink))
  }
  const timer = heartbeats(settings.HEARTBEAT_MS, () => rooms.values())

  return {
    instance: crypto.randomUUID(),
    get: (tenant) => ({
      async publish(body) {
        const r = room(tenant)
        const before = r.head
        const reply = r.publish(body)
        const taken = (e: WireEvent) => e.seq > before && e.seq <= reply.head
        observe?.published(tenant, body, body.events.filter(taken))
        return reply
      },
      attach: (request, sink) => attach(tenant, request, sink),
      connect: async (request: ConnectRequest, opts?: ConnectOptions) =>
        readableSink(queue, (sink) => attach(tenant, request, sink), opts?.ended),
      // Asking must not create a room: an unknown tenant simply has nobody connected.
      presence: async (grants) => rooms.get(tenant)?.presence(grants) ?? { tenant, subscribers: 0, topics: {} },
    }),
    /** The rooms that exist, for metrics read at scrape time, diagnostics and tests. */
    rooms,
    /** A tenant's room itself, created if need be (diagnostics and tests: the edge goes through `get`). */
    room,
    close() {
      clearInterval(timer)
      for (const r of rooms.values()) r.closeAll()
    },
  } satisfies LocalRooms & Record<string, unknown>
}

export type MemoryRooms = ReturnType<typeof memoryRooms>
