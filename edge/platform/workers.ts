/**
 * The edge on Cloudflare Workers: the same Hono app, one `TenantRoom` Durable Object per tenant. Browsers hold their SSE stream on a Worker
 * request, attached to the room over a hibernatable WebSocket, so the room sleeps (unbilled) between events; why: docs/cloudflare.md.
 */
import { DurableObject } from 'cloudflare:workers'
import { loadWorkersEnv, type WorkersSettings } from '../config.ts'
import { createEdge, type Edge } from '../create.ts'
import { durableRooms, parseRoomConnect, type RoomConnect, type RoomNamespace } from '../room/durable/durable-rooms.ts'
import type { OwnerStub } from '../room/durable/owner-link.ts'
import { RoomObject, type RoomObjectOptions, type RoomPeers } from '../room/durable/room-object.ts'
import { roomOf, shardName, type ShardState, type ShardStub } from '../room/durable/shards.ts'
import type { StoredEvent } from '../room/history.ts'
import type { Tally } from '../room/presence.ts'
import { startFailureLines } from '../../shared/env.ts'
import { RelayError } from '../../shared/errors.ts'
import { logs, setLogLevel, type Log } from '../../shared/log.ts'
import { HEADERS, ROOM_SOCKET } from '../../shared/protocol.ts'
import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply } from '../../shared/schema.ts'

/** The Worker's bindings: its rooms, and every variable of the Worker's schema (docs/configuration.md). */
export type Env = { ROOMS: DurableObjectNamespace<TenantRoom> } & { readonly [K in keyof WorkersSettings]?: string }

/** Workers Logs take the level from the console method. */
const log: Log = (level, msg, fields) => {
  if (logs(level)) console[level === 'info' || level === 'debug' ? 'log' : level](JSON.stringify({ level, msg, ...fields }))
}

/** Built once per isolate, on the first request (a Worker has no start-up); a failed build is kept, answered the same each time. */
let built: { env: Env; edge: Promise<Edge> } | undefined

const build = async (env: Env): Promise<Edge> => {
  try {
    const settings = loadWorkersEnv(env)
    setLogLevel(settings.LOG_LEVEL)
    return await createEdge(settings, { rooms: durableRooms(env.ROOMS as unknown as RoomNamespace, settings), log })
  } catch (err) {
    for (const line of startFailureLines(err)) log('error', line)
    throw err
  }
}

const edgeFor = (env: Env) => {
  if (built?.env !== env) built = { env, edge: build(env) }
  return built.edge
}

export default {
  async fetch(request, env, ctx) {
    let edge: Edge
    try {
      edge = await edgeFor(env)
    } catch (err) {
      // A missing secret, a bad var or key: say which, on every request, rather than a bare 500.
      const e = err instanceof RelayError ? err : new RelayError('INTERNAL', 'internal error')
      return Response.json(e.toJSON(), { status: e.status })
    }
    return edge.fetch(request, env, ctx)
  },
} satisfies ExportedHandler<Env>

/**
 * One tenant's room, or one shard of a hot tenant's room (`tenant#n`: docs/cloudflare.md, Sharding). History lives in SQLite
 * (`new_sqlite_classes`), so resume survives eviction and restarts; subscribers are hibernatable WebSockets tagged with their filter and
 * position, so the object can leave memory between events.
 */
export class TenantRoom extends DurableObject<Env> {
  private readonly room: RoomObject

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    // The same settings as the Worker's (the Worker refuses every request before a room is reached if they are bad).
    const settings = loadWorkersEnv(env)
    const { tenant, shard } = roomOf(ctx.id.name ?? '')
    const stub = (name: string) => env.ROOMS.get(env.ROOMS.idFromName(name)) as unknown
    // (An object reached by id rather than by name knows no tenant to shard for: it stays one room.)
    const peers: RoomPeers | undefined = !tenant
      ? undefined
      : shard === undefined
        ? { shard: (index) => stub(shardName(tenant, index)) as ShardStub }
        : { index: shard, owner: () => stub(tenant) as OwnerStub }
    // SQLite is synchronous: the room is loaded before any request or socket event arrives (no blockConcurrencyWhile needed).
    const options: RoomObjectOptions = {
      ...settings,
      tenant,
      ...(peers ? { peers } : {}),
      transaction: (fn) => ctx.storage.transactionSync(fn),
    }
    this.room = new RoomObject(ctx.storage.sql, options, ctx.getWebSockets())
  }

  /** A relay batch (RPC from the Worker, which has verified its signature): answered once stored, fanned out after. */
  async publish(body: PublishBody): Promise<PublishReply> {
    return this.room.publish(body)
  }

  /** Subscriber counts per topic, naming only topics that `grants` allows (RPC from the Worker; an owner counts its shards'). */
  async presence(tenant: string, grants?: string[]): Promise<PresenceSnapshot> {
    return this.room.presence(tenant, grants)
  }

  /** A shard: the events its owner stored (RPC from the owner). */
  async feed(events: StoredEvent[], rebase: boolean): Promise<ShardState> {
    return this.room.feed(events, rebase)
  }

  /** A shard: its own subscribers, for the owner's presence (RPC from the owner). */
  async tally(): Promise<Tally> {
    return this.room.room.presenceTally()
  }

  /** A shard: the subscribers the rest of the room holds (RPC from the owner). */
  async others(tally: Tally): Promise<void> {
    this.room.setOthers(tally)
  }

  /** An owner: a shard's subscribers changed (RPC from the shard). */
  async report(index: number, state: ShardState): Promise<void> {
    this.room.report(index, state)
  }

  /** Subscribed sockets of this object (tests and diagnostics). */
  get subscribers(): number {
    return this.room.size
  }

  /** An owner's shards (tests and diagnostics). */
  get shards(): number[] {
    return this.room.shards?.indexes ?? []
  }

  /** Oldest and newest seq held (tests and diagnostics). */
  get bounds(): { first: number | undefined; head: number } {
    return { first: this.room.history.first, head: this.room.history.head }
  }

  /** The WebSocket upgrade a Worker sends for each SSE subscriber; a full owner answers with the shard to connect to instead. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket')
      return Response.json(new RelayError('BAD_REQUEST', 'rooms accept WebSocket upgrades only').toJSON(), { status: 426 })
    let subscription: RoomConnect
    try {
      subscription = parseRoomConnect(request.headers.get(HEADERS.roomConnect))
      if (this.room.full) return new Response(null, { status: 204, headers: { [HEADERS.roomShard]: String(await this.room.place()) } })
    } catch (err) {
      if (!(err instanceof RelayError)) throw err
      return Response.json(err.toJSON(), { status: err.status })
    }
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server) // hibernatable: the runtime, not this object, holds the socket
    this.room.connect(server, subscription, subscription.tenant)
    return new Response(null, { status: 101, webSocket: client })
  }

  /** A Worker asks for the next round of its subscriber's replay (the only message Workers send). */
  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (message === ROOM_SOCKET.more) this.room.more(ws)
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    this.room.disconnect(ws)
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason)
    } catch {
      // already closed
    }
  }

  override webSocketError(ws: WebSocket): void {
    this.room.disconnect(ws)
  }
}
