import { afterAll, describe, expect, it } from 'vitest'
import { mintToken } from '../test/support/tokens.ts'
import { createAuth } from './auth.ts'
import { createEdge } from './create.ts'
import { testRooms } from '../test/support/rooms.ts'
import { edgeSettings } from '../test/support/settings.ts'

const auth = createAuth(edgeSettings())

describe('createAuth', () => {
  it('refuses a token whose topics claim is an empty list, app token or ticket', async () => {
    const none = await mintToken({ tenant: 't1', topics: [] })
    await expect(auth.verify(none)).rejects.toMatchObject({
      code: 'TOPIC_FORBIDDEN',
      message: expect.stringMatching(/^token grants no topics/),
    })
    await expect(auth.verifyApp(none)).rejects.toMatchObject({ code: 'TOPIC_FORBIDDEN' })
    // A ticket is signed by the edge, so it can only carry [] if it was forged with the ticket key: refused all the same.
    const principal = await auth.verifyApp(await mintToken({ tenant: 't1', topics: ['a'] }))
    const { ticket } = await auth.issueTicket(principal, [])
    await expect(auth.verify(ticket)).rejects.toMatchObject({ code: 'TOPIC_FORBIDDEN' })
    // No topics claim at all still grants every topic.
    expect((await auth.verify(await mintToken({ tenant: 't1' }))).topics).toBeUndefined()
  })
})

const rooms = testRooms()
const app = await createEdge(edgeSettings(), { rooms, log: () => {} })

describe('a token granting no topics', () => {
  afterAll(() => rooms.close())

  it('cannot open the event stream (403 TOPIC_FORBIDDEN), in a header or the query', async () => {
    const none = await mintToken({ tenant: 't1', topics: [] })
    for (const res of [
      await app.request('/v1/tenants/t1/events', { headers: { authorization: `Bearer ${none}` } }),
      await app.request(`/v1/tenants/t1/events?access_token=${none}`),
    ]) {
      expect(res.status).toBe(403)
      expect(await res.json()).toEqual({
        error: {
          code: 'TOPIC_FORBIDDEN',
          message: 'token grants no topics (its topics claim is an empty list): list at least one topic, or omit topics to grant all',
        },
      })
    }
    expect(rooms.room('t1').size).toBe(0)
  })
})
