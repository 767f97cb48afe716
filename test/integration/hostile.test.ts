/**
 * Hostile input at the edge, table-driven (test/support/hostile-cases.ts), against a real Node edge, relay and
 * Postgres. Every case states the status and error code it must get; meanwhile legitimate subscribers of another
 * tenant keep receiving every event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postBatch } from '../../relay/edge-client.ts'
import { authCases, outcome, relayCases } from '../support/hostile-cases.ts'
import { signingKey, startJwksServer } from '../support/jwks.ts'
import { openStream, type StreamHandle } from '../support/sse-client.ts'
import { startStack, type Stack } from '../support/stack.ts'
import { mintToken, RELAY_SECRET } from '../support/tokens.ts'

let s: Stack
let jwks: Awaited<ReturnType<typeof startJwksServer>>
const legit: { all?: StreamHandle; orders?: StreamHandle } = {}
let published = 0

const PER_TENANT = 4
const PER_SUBJECT = 2
const rsa = await signingKey('RS256', 'idp-1')
const attacker = await signingKey('RS256', 'idp-1') // same kid, different key
const held: Response[] = []
const url = (path: string) => `${s.edge.url}${path}`
const target = {
  fetch: (path: string, init?: RequestInit) => fetch(url(path), init),
  rsa,
  attacker,
  perTenant: PER_TENANT,
  perSubject: PER_SUBJECT,
  held,
}
const cases = [...authCases(target), ...relayCases(target)]

beforeAll(async () => {
  jwks = await startJwksServer([rsa])
  s = await startStack({
    edge: {
      EDGE_JWKS_URL: jwks.url,
      EDGE_MAX_CONNECTIONS_PER_TENANT: String(PER_TENANT),
      EDGE_MAX_CONNECTIONS_PER_SUBJECT: String(PER_SUBJECT),
      EDGE_MAX_EVENT_BYTES: '4096',
    },
  })
  legit.all = await s.subscribe('good')
  const { ticket } = (await (
    await fetch(url('/v1/tickets'), {
      method: 'POST',
      headers: { authorization: `Bearer ${await mintToken({ tenant: 'good', sub: 'alice' })}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topics: ['orders'] }),
    })
  ).json()) as { ticket: string }
  legit.orders = await openStream(url(`/v1/tenants/good/events?access_token=${ticket}`))
  expect([legit.all.status, legit.orders.status]).toEqual([200, 200])
})

afterAll(async () => {
  await Promise.all(held.map((r) => r.body?.cancel()))
  for (const h of [legit.all, legit.orders]) h?.close()
  await s?.stop()
  await jwks?.close()
})

describe('hostile input at the edge', () => {
  it(`has at least 30 cases (${cases.length})`, () => expect(cases.length).toBeGreaterThanOrEqual(30))

  for (const c of cases)
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      published++
      await s.publish('good', published % 2 ? 'orders' : 'users', { i: published }) // the honest traffic goes on
      const got = await outcome(await c.run())
      expect(got).toMatchObject({ status: c.status, body: { error: { code: c.code, message: expect.any(String) } } })
      if (c.status === 429) expect(Number(got.retryAfter)).toBeGreaterThan(0)
    })

  it('legitimate subscribers of another tenant received every event meanwhile, in order, once', async () => {
    const all = legit.all!
    const orders = legit.orders!
    const last = await s.publish('good', 'orders', { i: 'last' })
    await all.waitFor((m) => m.some((x) => x.id === String(last)), 30_000)
    await orders.waitFor((m) => m.some((x) => x.id === String(last)), 30_000)
    expect(all.seqs()).toEqual(Array.from({ length: last }, (_, i) => i + 1))
    expect(orders.seqs()).toEqual(Array.from({ length: last }, (_, i) => i + 1).filter((seq) => seq % 2 === 1 || seq === last))
    expect(orders.messages.every((m) => m.event === 'orders')).toBe(true)
    expect((await fetch(url('/healthz'))).status).toBe(200)
  })

  it('frees a connection slot when a stream closes', async () => {
    await Promise.all(held.splice(0).map((r) => r.body?.cancel()))
    const deadline = Date.now() + 20_000
    for (;;) {
      const h = await openStream(url('/v1/tenants/flood/events'), {
        authorization: `Bearer ${await mintToken({ tenant: 'flood', sub: 'late' })}`,
      })
      if (h.status === 200) return h.close()
      expect(h.status).toBe(429)
      if (Date.now() > deadline) throw new Error('slots were never released after the streams closed')
      await new Promise((r) => setTimeout(r, 100))
    }
  })

  it('accepts a relay retry of the same batch (a new nonce and signature per attempt); publish stays idempotent', async () => {
    const body = { tenant: 'retry', events: [1, 2].map((seq) => ({ seq, topic: 't', data: JSON.stringify({ seq }), ts: 0 })) }
    const replies = await Promise.all([
      postBatch(s.edge.url, RELAY_SECRET, body),
      postBatch(s.edge.url, RELAY_SECRET, body),
      postBatch(s.edge.url, RELAY_SECRET, body),
    ])
    expect(replies.map((r) => r.head)).toEqual([2, 2, 2])
    expect(
      s.edge.rooms
        .room('retry')
        .since(0)
        .map((e) => e.seq),
    ).toEqual([1, 2])
  })

  it('HEAD on the events stream → 405 with Allow: GET, and no subscriber is left behind', async () => {
    const res = await fetch(url('/v1/tenants/head/events'), {
      method: 'HEAD',
      headers: { authorization: `Bearer ${await mintToken({ tenant: 'head' })}` },
    })
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET')
    expect(s.edge.rooms.rooms.get('head')?.size ?? 0).toBe(0)
  })
})
