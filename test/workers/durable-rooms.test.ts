import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { CONTRACT_HISTORY_LIMIT, roomsContract } from '../../edge/room/rooms.contract.ts'
import { durableRooms, type RoomNamespace } from '../../edge/room/durable/durable-rooms.ts'
import type { Env } from '../../edge/platform/workers.ts'

const ns = (env as unknown as Env).ROOMS

if (Number((env as unknown as Env).HISTORY_LIMIT) !== CONTRACT_HISTORY_LIMIT)
  throw new Error(`the workers test project must bind HISTORY_LIMIT=${CONTRACT_HISTORY_LIMIT} (vitest.config.ts)`)

roomsContract('Durable Object rooms (workerd)', () => ({
  rooms: durableRooms(ns as unknown as RoomNamespace, { HEARTBEAT_MS: 1000, SUBSCRIBER_QUEUE_BYTES: 4 << 20 }),
  subscribers: (tenant) => runInDurableObject(ns.get(ns.idFromName(tenant)), (room) => room.subscribers),
}))
