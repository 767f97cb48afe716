import { afterAll } from 'vitest'
import { CONTRACT_HISTORY_LIMIT, roomsContract } from './rooms.contract.ts'
import { memoryRooms } from './rooms.ts'

const rooms = memoryRooms({ historyLimit: CONTRACT_HISTORY_LIMIT })
afterAll(() => rooms.close())

roomsContract('in-memory rooms (Node)', () => ({ rooms, subscribers: async (tenant) => rooms.room(tenant).size }))
