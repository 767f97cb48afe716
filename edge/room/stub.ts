import type { PresenceSnapshot } from '../../shared/presence.ts'
import type { PublishBody, PublishReply, TenantId, WireEvent } from '../../shared/schema.ts'
import type { Sink, SubscribeOptions } from './room.ts'
import type { StreamTerms } from './stream.ts'

/** A subscription request as it travels to a room (plain data: it may cross into a Durable Object). */
export interface ConnectRequest extends SubscribeOptions, StreamTerms {}

export interface ConnectOptions {
  /** The browser's request signal: aborts when the client leaves, where the runtime reports it. */
  signal?: AbortSignal
  /** Called once when the stream ends, for any reason (it releases the connection's slot). */
  ended?: () => void
}

/** What an edge handler can do with a tenant's room, wherever the room lives (memory, a Durable Object). */
export interface RoomStub {
  publish(body: PublishBody): Promise<PublishReply>
  /** The SSE byte stream for one subscriber; cancelling the stream unsubscribes. */
  connect(request: ConnectRequest, opts?: ConnectOptions): Promise<ReadableStream<Uint8Array>>
  /** Subscriber counts per topic, naming only topics that `grants` allows (undefined = all). */
  presence(grants?: readonly string[]): Promise<PresenceSnapshot>
}

/** All that an edge handler knows about where a tenant's room lives. */
export interface Rooms {
  get(tenant: TenantId): RoomStub
  /** Names these rooms for the relay (`POST /internal/hello`): memory rooms start empty, so take a new one each start. */
  readonly instance: string
}

/** Rooms in this process (Node, Deno): besides the stub's, a stream can be written to any Sink (Node writes to its sockets). */
export interface LocalRooms extends Rooms {
  /** `attach` runs one stream into `sink` (see runStream) and returns the function to call when the client leaves. */
  get(tenant: TenantId): RoomStub & { attach(request: ConnectRequest, sink: Sink): () => void }
}

/** What the Node edge counts as it happens (the rest it reads from the rooms at scrape time). */
export interface RoomsObserver {
  /** A batch reached a room: `fresh` are its events the room took (the rest were resends it had). */
  published(tenant: string, body: PublishBody, fresh: readonly WireEvent[]): void
  /** A stream opened; `resume` when it carried a Last-Event-ID. */
  connected(tenant: string, resume: boolean): void
}
