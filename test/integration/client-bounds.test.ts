import { connect, type Socket } from 'node:net'
import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { createEdge } from '../../edge/create.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { testRooms } from '../support/rooms.ts'
import { mintWith, signingKey, startJwksServer } from '../support/jwks.ts'
import { openStream } from '../support/sse-client.ts'
import { edgeEnv, startStack, type Stack } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

/** Bounded per client: a client that leaves at any moment releases everything, and a replay holds one round. */
let cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

const subscribers = (edge: Pick<NodeEdge, 'rooms'>, tenant: string) => edge.rooms.rooms.get(tenant)?.size ?? 0

/** An edge on Node whose streams go out as ReadableStream bodies (how Deno and any `fetch` server serve them). */
const startReadableEdge = async (env: Record<string, string>) => {
  const settings = edgeEnv(env)
  const rooms = testRooms(settings)
  const app = await createEdge(settings, { rooms, log: () => {} })
  const server = await new Promise<ServerType>((resolve) => {
    const s: ServerType = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    rooms,
    close: () =>
      new Promise<void>(
        (done) => (rooms.close(), server.close(() => done()), (server as { closeAllConnections?: () => void }).closeAllConnections?.()),
      ),
  }
}

describe.each<[string, (env: Record<string, string>) => Promise<Pick<NodeEdge, 'url' | 'rooms' | 'close'>>]>([
  ['Node edge, bytes straight to the socket', (env) => startNodeEdge(edgeEnv(env))],
  ['ReadableStream bodies', startReadableEdge],
])('clients that hang up while their token is checked (%s)', (_, start) => {
  it('leave no subscriber, slot or presence behind: the same user then connects normally', async () => {
    const key = await signingKey('RS256', 'slow-1')
    const jwks = await startJwksServer([key])
    cleanup.push(() => jwks.close())
    jwks.state.delayMs = 400 // every request waits this long in authentication
    const edge = await start({ EDGE_JWKS_URL: jwks.url, EDGE_MAX_CONNECTIONS_PER_SUBJECT: '100' })
    cleanup.push(() => edge.close())
    const token = await mintWith(key, { tenant: 'ghosts', sub: 'u1' })

    // 150 requests from one subject, each abandoned 50 ms in, while its token is still being checked.
    const hungUp = Array.from(
      { length: 150 },
      () =>
        new Promise<void>((resolve) => {
          const req = request(`${edge.url}/v1/tenants/ghosts/events`, { headers: { authorization: `Bearer ${token}` } })
          req.on('error', () => resolve())
          req.on('close', () => resolve())
          req.end()
          setTimeout(() => req.destroy(), 50)
        }),
    )
    await Promise.all(hungUp)
    await expect.poll(() => jwks.state.fetches, { timeout: 5_000 }).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 600)) // the key server has answered: every handler has run

    expect(subscribers(edge, 'ghosts')).toBe(0)
    const presence = await fetch(`${edge.url}/v1/tenants/ghosts/presence`, {
      headers: { authorization: `Bearer ${await mintToken({ tenant: 'ghosts' })}` },
    })
    expect(((await presence.json()) as { subscribers: number }).subscribers).toBe(0)
    const real = await openStream(`${edge.url}/v1/tenants/ghosts/events`, { authorization: `Bearer ${token}` })
    expect(real.status).toBe(200)
    await expect.poll(() => subscribers(edge, 'ghosts')).toBe(1)
    real.close()
    await expect.poll(() => subscribers(edge, 'ghosts')).toBe(0)
  })
})

describe('a resume from far back is paced by its socket', () => {
  let s: Stack
  it('30 clients resuming from 0 over a 40 MB history that never read hold one replay round each, not a copy', async () => {
    s = await startStack({ edge: { HISTORY_MAX_BYTES: String(64 << 20) } })
    cleanup.push(() => s.stop())
    const pad = 'p'.repeat(20_000)
    await s.db.sql`select relay.publish('far', 't', jsonb_build_object('i', i, 'pad', ${pad}::text)) from generate_series(1, 2000) i`
    const probe = await s.subscribe('far', { lastEventId: 1999 })
    await probe.waitFor((m) => m.some((x) => x.id === '2000'), 30_000)
    probe.close()

    const before = process.memoryUsage().arrayBuffers
    const token = await mintToken({ tenant: 'far' })
    const stalled: Socket[] = []
    for (let i = 0; i < 30; i++) {
      const socket = connect(s.edge.port, '127.0.0.1')
      socket.pause() // never reads: the kernel buffers fill, then the edge's
      socket.write(`GET /v1/tenants/far/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\nlast-event-id: 0\r\n\r\n`)
      stalled.push(socket)
      // One at a time: each replay starts in a turn of its own (as clients arriving over time do).
      await expect.poll(() => subscribers(s.edge, 'far'), { timeout: 10_000, interval: 20 }).toBe(i + 1)
    }
    await new Promise((r) => setTimeout(r, 1_500)) // what an unpaced replay would queue, it has queued by now
    const grown = process.memoryUsage().arrayBuffers - before
    // Unpaced, each would hold the whole 40 MB history (1.2 GB). Paced: a round (64 KiB) plus socket buffers each.
    expect(grown).toBeLessThan(64 << 20)

    // A reader that does read gets all of it, in order; the stalled ones leave and release their places.
    const reader = await s.subscribe('far', { lastEventId: 0 })
    await reader.waitFor((m) => m.length === 2000, 30_000)
    expect(reader.seqs()).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1))
    reader.close()
    for (const socket of stalled) socket.destroy()
    await expect.poll(() => subscribers(s.edge, 'far'), { timeout: 5_000 }).toBe(0)
  })
})
