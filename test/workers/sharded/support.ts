import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import type { Env } from '../../../edge/platform/workers.ts'
import { durableRooms, type RoomNamespace } from '../../../edge/room/durable/durable-rooms.ts'
import { shardName } from '../../../edge/room/durable/shards.ts'
import { streamFromSocket } from '../../../edge/room/durable/socket-stream.ts'
import type { ConnectRequest } from '../../../edge/room/stub.ts'
import { HEADERS } from '../../../shared/protocol.ts'

export const ns = (env as unknown as Env).ROOMS

/** What this project binds (vitest.config.ts): a tenant's room holds 3 subscribers, then shards. */
export const LIMIT = 3
if (Number((env as unknown as Env).ROOM_SHARD_SUBSCRIBERS) !== LIMIT)
  throw new Error(`the workers-sharded test project must bind ROOM_SHARD_SUBSCRIBERS=${LIMIT} (vitest.config.ts)`)

export const rooms = durableRooms(ns as unknown as RoomNamespace, { HEARTBEAT_MS: 1000, SUBSCRIBER_QUEUE_BYTES: 4 << 20 })

/** A tenant's room object (the owner), or its shard `index`; a fresh stub each time (a stub breaks with its object). */
export const object = (tenant: string, index?: number) => ns.get(ns.idFromName(index === undefined ? tenant : shardName(tenant, index)))

/** The owner's shards, as it knows them. */
export const shardsOf = (tenant: string) => runInDurableObject(object(tenant), (room) => room.shards)

/** Subscribers of the owner and of each shard it knows, in that order. */
export const placement = async (tenant: string): Promise<number[]> => {
  const counts = [await runInDurableObject(object(tenant), (room) => room.subscribers)]
  for (const index of await shardsOf(tenant)) counts.push(await runInDurableObject(object(tenant, index), (room) => room.subscribers))
  return counts
}

/** A subscription as the Worker asks for one (`over` replacing some of it). */
export const request = (over: Partial<ConnectRequest> = {}): ConnectRequest => ({ topics: {}, retryMs: 1000, ...over })

/** Retries `check` until it passes (what a room does in the background: reports, releases), or throws its last failure. */
export const eventually = async (check: () => Promise<void>, ms = 10_000) => {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await check()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/** A subscriber sent straight to shard `index`, as a connect the owner placed there and that arrives late. */
export const connectToShard = async (tenant: string, index: number, lastEventId?: number) => {
  const wire = { tenant, topics: {}, lastEventId }
  const init = { headers: { upgrade: 'websocket', [HEADERS.roomConnect]: JSON.stringify(wire) } }
  const res = await object(tenant, index).fetch('https://room/connect', init)
  if (!res.webSocket) throw new Error(`the shard refused: ${res.status}`)
  return streamFromSocket(res.webSocket, { retryMs: 1000, heartbeatMs: 60_000 }, { queueBytes: 4 << 20 })
}
