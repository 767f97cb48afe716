import { afterAll } from 'vitest'
import { CONTRACT_HISTORY_LIMIT, roomsContract } from './rooms.contract.ts'
import { testRooms } from '../../test/support/rooms.ts'

const rooms = testRooms({ HISTORY_LIMIT: CONTRACT_HISTORY_LIMIT })
afterAll(() => rooms.close())

roomsContract('in-memory rooms (Node)', () => ({ rooms, subscribers: async (tenant) => rooms.room(tenant).size }))
