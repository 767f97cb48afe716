import { afterAll, describe, expect, it } from 'vitest'
import { mintToken } from '../test/support/tokens.ts'
import { createEdge } from './create.ts'
import { testRooms } from '../test/support/rooms.ts'
import { edgeSettings } from '../test/support/settings.ts'

const rooms = testRooms()
// The clock-skew allowance (30 s) and a small topic limit, so that both edges of each rule are reachable.
const app = await createEdge(edgeSettings({ EDGE_MAX_TOPICS: '3' }), { rooms, log: () => {} })
afterAll(() => rooms.close())

const nowS = () => Math.floor(Date.now() / 1000)
const ticket = async (token: string, body?: unknown) => {
  const res = await app.request('/v1/tickets', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string }; topics?: string[] } }
}

describe('POST /v1/tickets', () => {
  it('refuses an app token past its exp even within the clock-skew allowance', async () => {
    const expired = await mintToken({ tenant: 't1' }, { expiresIn: nowS() - 5 })
    const res = await ticket(expired, {})
    expect(res.status).toBe(401)
    expect(res.body.error?.code).toBe('TOKEN_EXPIRED')
    expect(res.body.error?.message).toMatch(/fetch a new token/)
    // The same token still verifies (the allowance is for clock drift): only ticket issuing refuses it.
    const live = await mintToken({ tenant: 't1' }, { expiresIn: nowS() + 60 })
    expect((await ticket(live, {})).status).toBe(200)
  })

  it('never issues a ticket for more topics than the limit, asked for or inherited from the token', async () => {
    const wide = await mintToken({ tenant: 't1', topics: ['a', 'b', 'c', 'd'] })
    const inherited = await ticket(wide, {})
    expect(inherited.status).toBe(400)
    expect(inherited.body.error?.code).toBe('INVALID_TOPIC')
    expect(inherited.body.error?.message).toMatch(/over the limit of 3 per ticket/)
    const asked = await ticket(wide, { topics: ['a', 'b', 'c', 'd'] })
    expect(asked.status).toBe(400)
    expect(asked.body.error?.code).toBe('INVALID_TOPIC')
    expect(asked.body.error?.message).toMatch(/at most 3 topics per ticket/)
    expect(await ticket(wide, { topics: ['a', 'b', 'c'] })).toMatchObject({ status: 200, body: { topics: ['a', 'b', 'c'] } })
    // Duplicated grants count once.
    const repeated = await mintToken({ tenant: 't1', topics: ['a', 'b', 'c', 'a'] })
    expect(await ticket(repeated, {})).toMatchObject({ status: 200, body: { topics: ['a', 'b', 'c'] } })
  })

  it('refuses a token that grants no topics', async () => {
    const none = await mintToken({ tenant: 't1', topics: [] })
    const res = await ticket(none, {})
    expect(res.status).toBe(403)
    expect(res.body.error?.code).toBe('TOPIC_FORBIDDEN')
    expect(res.body.error?.message).toMatch(/token grants no topics/)
  })
})
