import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll } from 'vitest'
import { testRooms } from '../../test/support/rooms.ts'
import { CONTRACT_HISTORY_LIMIT, roomsContract } from '../room/rooms.contract.ts'
import type { ConnectRequest, Rooms } from '../room/stub.ts'
import { NodeSink } from './node-sse.ts'

/**
 * The Rooms contract with every stream written by the Node edge's sink (NodeSink: bytes straight to a real
 * socket), not the ReadableStream path memory-rooms.test.ts covers. Each `connect` is an HTTP request to a server
 * in this process whose handler attaches a NodeSink; the contract reads the response body.
 */
const rooms = testRooms({ HISTORY_LIMIT: CONTRACT_HISTORY_LIMIT })
let server: Server
let base = ''

beforeAll(async () => {
  server = createServer(async (req, res) => {
    // The subscription travels as the body: the largest filter the contract tries is too long for a URL.
    let body = ''
    for await (const chunk of req) body += chunk
    const { tenant, request } = JSON.parse(body) as { tenant: string; request: ConnectRequest }
    const sink = new NodeSink(res, 4 << 20, 1000)
    let detach = () => {}
    res.once('close', () => (sink.gone(), detach()))
    detach = rooms.get(tenant).attach(request, sink)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
})
afterAll(async () => {
  rooms.close()
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

const viaNodeSinks: Rooms = {
  instance: rooms.instance,
  get: (tenant) => ({
    ...rooms.get(tenant),
    async connect(request) {
      const res = await fetch(base, { method: 'POST', body: JSON.stringify({ tenant, request }) })
      return res.body!
    },
  }),
}

roomsContract('in-memory rooms, written by NodeSink (Node)', () => ({
  rooms: viaNodeSinks,
  subscribers: async (tenant) => rooms.room(tenant).size,
}))
