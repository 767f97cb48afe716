import { ArrayHistory } from '../../edge/room/history.ts'
import { memoryRooms, type MemoryRoomsHooks, type MemoryRoomsSettings } from '../../edge/room/memory-rooms.ts'
import { edgeSettings } from './settings.ts'

/** Rooms in memory with the edge's defaults, `over` replacing some (unit tests that need no server). */
export const testRooms = (over: Partial<MemoryRoomsSettings> = {}, hooks: MemoryRoomsHooks = {}) =>
  memoryRooms({ ...edgeSettings(), ...over }, hooks)

/** A history of `limit` events, bounded in bytes as a room's is by default (HISTORY_MAX_BYTES) unless `bytes` says. */
export const testHistory = (limit: number, bytes = edgeSettings().HISTORY_MAX_BYTES) => new ArrayHistory({ limit, bytes })
