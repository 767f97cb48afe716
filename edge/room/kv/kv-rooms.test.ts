import { afterAll, beforeAll } from 'vitest'
import { edgeSettings } from '../../../test/support/settings.ts'
import { tempKv } from '../../../test/support/kv.ts'
import { CONTRACT_HISTORY_LIMIT, roomsContract } from '../rooms.contract.ts'
import { type KvRooms, kvRooms } from './kv-rooms.ts'

const db = tempKv()
let rooms: KvRooms
beforeAll(async () => {
  rooms = await kvRooms(await db.open(), { ...edgeSettings(), HISTORY_LIMIT: CONTRACT_HISTORY_LIMIT })
})
afterAll(() => {
  rooms.close()
  db.close()
})

roomsContract('KV rooms (@deno/kv in Node)', () => ({ rooms, subscribers: async (tenant) => rooms.subscribers(tenant) }))
