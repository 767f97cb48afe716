import { describe, expect, it } from 'vitest'
import { mintToken } from '../test/support/tokens.ts'
import { SIGNATURE_WINDOW_S } from '../shared/protocol.ts'
import { sign } from '../shared/sign.ts'
import { createApp } from './app.ts'
import { createAuth } from './auth.ts'
import { createEdge, readableStreams } from './create.ts'
import { ConnectionLimits } from './limits.ts'
import { ReplayCache } from './signature-replay.ts'
import type { Rooms } from './room/stub.ts'
import { testRooms } from '../test/support/rooms.ts'
import { edgeSettings } from '../test/support/settings.ts'

const settings = edgeSettings()
const quiet = () => {}
const corsApp = await createEdge(edgeSettings({ EDGE_CORS_ORIGINS: 'https://app.example' }), { rooms: testRooms(), log: quiet })

describe('createApp', () => {
  it('never logs a token: the access_token in the URL is redacted', async () => {
    const lines: unknown[] = []
    const broken: Rooms = {
      instance: 'test',
      get: () => ({
        publish: async () => ({ tenant: 't1', head: 0 }),
        presence: async () => ({ tenant: 't1', subscribers: 0, topics: {} }),
        connect: async () => {
          throw new Error('room unavailable')
        },
      }),
    }
    const app = await createEdge(settings, { rooms: broken, log: (...args) => lines.push(args) })
    const token = await mintToken({ tenant: 't1' })
    const res = await app.request(`/v1/tenants/t1/events?topics=a&access_token=${token}`)
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } })
    const logged = JSON.stringify(lines)
    expect(logged).toContain('access_token=REDACTED')
    expect(logged).not.toContain(token)
    expect(logged).not.toContain(token.split('.')[2])
  })

  it('counts a stream as live until it is cancelled (any Rooms implementation)', async () => {
    const rooms = testRooms()
    const app = await createEdge(edgeSettings({ EDGE_MAX_CONNECTIONS_PER_TENANT: '1' }), { rooms, log: quiet })
    const headers = { authorization: `Bearer ${await mintToken({ tenant: 't1' })}` }
    const first = await app.request('/v1/tenants/t1/events', { headers })
    expect(first.status).toBe(200)
    const refused = await app.request('/v1/tenants/t1/events', { headers })
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toBe('5')
    await first.body!.cancel()
    expect(rooms.room('t1').size).toBe(0)
    const again = await app.request('/v1/tenants/t1/events', { headers })
    expect(again.status).toBe(200)
    await again.body!.cancel()
    rooms.close()
  })

  it('never refuses a fresh, validly signed publish for volume: past its capacity the replay cache forgets the oldest', async () => {
    const rooms = testRooms()
    // The app as createEdge builds it, but with a cache of 100 entries: a few hundred publishes pass its capacity.
    const app = createApp(settings, {
      rooms,
      auth: createAuth(settings),
      limits: new ConnectionLimits({
        perTenant: settings.EDGE_MAX_CONNECTIONS_PER_TENANT,
        perSubject: settings.EDGE_MAX_CONNECTIONS_PER_SUBJECT,
      }),
      replays: new ReplayCache(100, SIGNATURE_WINDOW_S),
      streams: readableStreams(rooms),
      log: quiet,
    })
    const post = async (body: string, signature?: string) =>
      app.request('/internal/publish', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-relay-signature': signature ?? (await sign(settings.RELAY_SECRET, body)) },
        body,
      })
    // Empty batches: each is a full signed publish (verified, admitted to the cache) that just answers the head.
    const statuses = new Set<number>()
    for (let i = 0; i < 350; i++) statuses.add((await post(JSON.stringify({ tenant: `rc-${i % 7}`, events: [], nonce: `n${i}` }))).status)
    expect([...statuses]).toEqual([200])
    // An exact replay of a signature still held is refused.
    const body = JSON.stringify({ tenant: 'rc', events: [], nonce: 'again' })
    const signature = await sign(settings.RELAY_SECRET, body)
    expect((await post(body, signature)).status).toBe(200)
    const replayed = await post(body, signature)
    expect(replayed.status).toBe(401)
    expect(((await replayed.json()) as { error: { code: string } }).error.code).toBe('SIGNATURE_REPLAYED')
    rooms.close()
  })

  describe('CORS', () => {
    const app = corsApp

    it('answers a preflight from an allowed origin only', async () => {
      const pre = (origin: string) =>
        app.request('/v1/tickets', {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
        })
      const ok = await pre('https://app.example')
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example')
      expect(ok.headers.get('access-control-allow-headers')).toMatch(/authorization/)
      expect((await pre('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull()
    })

    it('lets the browser read error bodies from an allowed origin', async () => {
      const res = await app.request('/v1/tenants/t1/events', { headers: { origin: 'https://app.example' } })
      expect(res.status).toBe(401)
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example')
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOKEN_MISSING')
    })
  })
})
