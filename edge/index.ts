/**
 * `edge-relay/edge`: the edge as a Hono app for any runtime, to serve alone or mount in your own Hono app.
 *
 * ```ts
 * import { createEdge, loadEdgeEnv, memoryRooms } from 'edge-relay/edge'
 * const settings = loadEdgeEnv(process.env)
 * app.route('/realtime', await createEdge(settings, { rooms: memoryRooms(settings) }))
 * ```
 * On Node, `edge-relay/node` serves it with the fast stream path (startNodeEdge); on Workers, `edge-relay/workers`.
 */
export { createApp, type AppParts, type StreamServer } from './app.ts'
export { type EdgeSettings, EdgeEnv, loadEdgeEnv } from './config.ts'
export { createEdge, type Edge, type Platform, readableStreams } from './create.ts'
export { memoryRooms, type MemoryRooms } from './room/memory-rooms.ts'
export type { Rooms, RoomStub } from './room/stub.ts'
