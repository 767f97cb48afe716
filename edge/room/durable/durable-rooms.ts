import * as v from 'valibot'
import { RelayError } from '../../../shared/errors.ts'
import { HEADERS } from '../../../shared/protocol.ts'
import type { PresenceSnapshot } from '../../../shared/presence.ts'
import { TenantId, TopicGrant, Topic, type PublishBody, type PublishReply } from '../../../shared/schema.ts'
import type { EdgeSettings } from '../../config.ts'
import type { ConnectOptions, ConnectRequest, Rooms, RoomStub } from '../stub.ts'
import { compactFilter } from './socket-sink.ts'
import { shardName } from './shards.ts'
import { streamFromSocket, type ClientSocket } from './socket-stream.ts'

/** What a room object's stub offers (RPC `publish`, and `fetch` for the WebSocket upgrade). Structural. */
export interface RoomObjectStub {
  publish(body: PublishBody): Promise<PublishReply>
  presence(tenant: string, grants?: string[]): Promise<PresenceSnapshot>
  fetch(input: string, init?: RequestInit): Promise<Response>
}

/** A Durable Object namespace, as far as routing by tenant needs it. */
export interface RoomNamespace {
  idFromName(name: string): unknown
  get(id: never): RoomObjectStub
}

/** The part of a ConnectRequest the room needs, as it travels in the upgrade request's header. */
export const RoomConnect = v.object({
  tenant: TenantId,
  topics: v.object({ requested: v.optional(v.array(Topic)), grants: v.optional(v.array(TopicGrant)) }),
  lastEventId: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
  presence: v.optional(v.literal(true)),
})
export type RoomConnect = v.InferOutput<typeof RoomConnect>

/** Reads the subscription a Worker sent along with its WebSocket upgrade (inside the room object). */
export const parseRoomConnect = (header: string | null): RoomConnect => {
  let json: unknown
  try {
    json = JSON.parse(header ?? '')
  } catch {
    throw new RelayError('BAD_REQUEST', `${HEADERS.roomConnect} must be JSON`)
  }
  const parsed = v.safeParse(RoomConnect, json)
  if (!parsed.success) throw new RelayError('BAD_REQUEST', v.summarize(parsed.issues))
  return parsed.output
}

/** A room that cannot be reached (overloaded, being reset, a deploy in progress) is a 503: callers retry. */
const reachable = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call()
  } catch (err) {
    if (err instanceof RelayError) throw err
    throw new RelayError('NOT_READY', `room unavailable for ${what}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** What durable rooms read of the edge's settings: the Worker's heartbeat, and the bytes a browser's stream may queue. */
export type DurableRoomsSettings = Pick<EdgeSettings, 'HEARTBEAT_MS' | 'SUBSCRIBER_QUEUE_BYTES'>

/**
 * Rooms on Cloudflare: one Durable Object per tenant (`idFromName`). Publishing is an RPC call; a subscriber is a hibernatable WebSocket
 * to the room, which the Worker turns into SSE, so the room sleeps between events while browsers stay connected (docs/cloudflare.md).
 */
export const durableRooms = (ns: RoomNamespace, settings: DurableRoomsSettings) => {
  const stub = (name: string) => ns.get(ns.idFromName(name) as never)
  return {
    // History lives in each object's SQLite: a new Worker isolate finds every room as it was.
    instance: 'durable',
    get: (tenant): RoomStub => ({
      publish: (body) => reachable('publish', () => stub(tenant).publish(body)),
      async connect(request: ConnectRequest, opts: ConnectOptions = {}) {
        const { requested, grants } = request.topics
        // Compact keeps the upgrade's header small; presence events need the grants, so those keep the full filter.
        const topics = (request.presence ? { requested, grants } : compactFilter(request.topics)) as RoomConnect['topics']
        // Undefined fields do not travel: JSON.stringify leaves them out.
        const wire: RoomConnect = { tenant, topics, lastEventId: request.lastEventId, presence: request.presence || undefined }
        const init = { headers: { upgrade: 'websocket', [HEADERS.roomConnect]: JSON.stringify(wire) } }
        let res = await reachable('connect', () => stub(tenant).fetch('https://room/connect', init))
        // A full room names the shard that takes the subscriber (docs/cloudflare.md, Sharding).
        const shard = res.headers.get(HEADERS.roomShard)
        if (shard !== null)
          res = await reachable('connect', () => stub(shardName(tenant, Number(shard))).fetch('https://room/connect', init))
        const ws = (res as Response & { webSocket?: ClientSocket | null }).webSocket
        if (res.status !== 101 || !ws)
          throw new RelayError('NOT_READY', `room refused the subscription (${res.status}): ${(await res.text()).slice(0, 200)}`)
        const terms = { ...request, heartbeatMs: settings.HEARTBEAT_MS }
        return streamFromSocket(ws, terms, { queueBytes: settings.SUBSCRIBER_QUEUE_BYTES, ...opts })
      },
      presence: (grants) => reachable('presence', () => stub(tenant).presence(tenant, grants ? [...grants] : undefined)),
    }),
  } satisfies Rooms
}
