import { loadEdgeEnv, memoryRoomsSettings } from '../../edge/config.ts'
import { memoryRooms, type MemoryRoomsOptions } from '../../edge/room/rooms.ts'
import { JWT_SECRET, RELAY_SECRET } from './tokens.ts'

/** Rooms in memory with the edge's defaults, `over` replacing some (unit tests that need no server). */
export const testRooms = (over: Partial<MemoryRoomsOptions> = {}) =>
  memoryRooms({ ...memoryRoomsSettings(loadEdgeEnv({ EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET })), ...over })
