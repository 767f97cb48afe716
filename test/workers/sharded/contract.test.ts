import { CONTRACT_HISTORY_LIMIT, roomsContract } from '../../../edge/room/rooms.contract.ts'
import { placement, rooms } from './support.ts'
import { env } from 'cloudflare:workers'

if (Number((env as { HISTORY_LIMIT?: string }).HISTORY_LIMIT) !== CONTRACT_HISTORY_LIMIT)
  throw new Error(`the workers-sharded test project must bind HISTORY_LIMIT=${CONTRACT_HISTORY_LIMIT} (vitest.config.ts)`)

roomsContract('Durable Object rooms sharded past 3 subscribers (workerd)', () => ({
  rooms,
  subscribers: async (tenant) => (await placement(tenant)).reduce((a, n) => a + n, 0),
}))
