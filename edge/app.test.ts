import { describe, expect, it } from 'vitest'
import { mintToken } from '../test/support/tokens.ts'
import { sign } from '../shared/sign.ts'
import { createApp } from './app.ts'
import { createAuth } from './auth.ts'
import type { Rooms } from './room/rooms.ts'
import { testRooms } from '../test/support/rooms.ts'

const JWT_SECRET = 'test-jwt-secret-0123456789abcdef'
const auth = createAuth({ jwtSecret: JWT_SECRET })
const config = { relaySecret: 'relay-secret-0123456789abcdef' }

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
    const app = createApp({ rooms: broken, auth, config, log: (...args) => lines.push(args) })
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
    const app = createApp({ rooms, auth, config: { ...config, maxConnectionsPerTenant: 1 } })
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
    const app = createApp({ rooms, auth, config: { ...config, replayCacheEntries: 100 } })
    const post = async (body: string, signature?: string) =>
      app.request('/internal/publish', { method: 'POST', headers: { 'content-type': 'application/json', 'x-relay-signature': signature ?? (await sign(config.relaySecret, body)) }, body })
    // Empty batches: each is a full signed publish (verified, admitted to the cache) that just answers the head.
    const statuses = new Set<number>()
    for (let i = 0; i < 350; i++) statuses.add((await post(JSON.stringify({ tenant: `rc-${i % 7}`, events: [], nonce: `n${i}` }))).status)
    expect([...statuses]).toEqual([200])
    // An exact replay of a signature still held is refused.
    const body = JSON.stringify({ tenant: 'rc', events: [], nonce: 'again' })
    const signature = await sign(config.relaySecret, body)
    expect((await post(body, signature)).status).toBe(200)
    const replayed = await post(body, signature)
    expect(replayed.status).toBe(401)
    expect(((await replayed.json()) as { error: { code: string } }).error.code).toBe('SIGNATURE_REPLAYED')
    rooms.close()
  })

  describe('CORS', () => {
    const app = createApp({ rooms: testRooms(), auth, config: { ...config, corsOrigins: ['https://app.example'] } })

    it('answers a preflight from an allowed origin only', async () => {
      const pre = (origin: string) =>
        app.request('/v1/tickets', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } })
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
