/**
 * Hostile input at the edge, table-driven, against a real Node edge, relay and Postgres. Every case states the status
 * and error code it must get; meanwhile legitimate subscribers of another tenant keep receiving every event.
 */
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postBatch } from '../../relay/forward.ts'
import { sign } from '../../shared/sign.ts'
import { mintWith, signingKey, startJwksServer, unsignedToken, type SigningKey } from '../support/jwks.ts'
import { openStream, type StreamHandle } from '../support/sse-client.ts'
import { startStack, type Stack } from '../support/stack.ts'
import { JWT_SECRET, mintToken, RELAY_SECRET } from '../support/tokens.ts'

let s: Stack
let jwks: Awaited<ReturnType<typeof startJwksServer>>
let rsa: SigningKey
let attacker: SigningKey
const legit: { all?: StreamHandle; orders?: StreamHandle } = {}
let published = 0
const open: StreamHandle[] = []

const PER_TENANT = 4
const PER_SUBJECT = 2

beforeAll(async () => {
  rsa = await signingKey('RS256', 'idp-1')
  attacker = await signingKey('RS256', 'idp-1') // same kid, different key
  jwks = await startJwksServer([rsa])
  s = await startStack({
    edge: {
      EDGE_JWKS_URL: jwks.url,
      EDGE_MAX_CONNECTIONS_PER_TENANT: String(PER_TENANT),
      EDGE_MAX_CONNECTIONS_PER_SUBJECT: String(PER_SUBJECT),
      EDGE_MAX_EVENT_BYTES: '4096',
      EDGE_MAX_PUBLISH_BYTES: String(256 * 1024),
    },
  })
  legit.all = await s.subscribe('good')
  const { ticket } = (await (
    await fetch(`${s.edge.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await mintToken({ tenant: 'good', sub: 'alice' })}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topics: ['orders'] }),
    })
  ).json()) as { ticket: string }
  legit.orders = await openStream(`${s.edge.url}/v1/tenants/good/events?access_token=${ticket}`)
  expect([legit.all.status, legit.orders.status]).toEqual([200, 200])
})

afterAll(async () => {
  for (const h of [...open, legit.all, legit.orders]) h?.close()
  await s?.stop()
  await jwks?.close()
})

const url = (path: string) => `${s.edge.url}${path}`
const events = '/v1/tenants/t1/events'
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const get = (path: string, headers: Record<string, string> = {}) => fetch(url(path), { headers })
const t1 = (claims: Record<string, unknown> = {}, opts?: Parameters<typeof mintToken>[1]) => mintToken({ tenant: 't1', ...claims }, opts)
const nowS = () => Math.floor(Date.now() / 1000)

const ticketFor = async (token: string, body: unknown = {}) =>
  fetch(url('/v1/tickets'), { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify(body) })

const publishRaw = (text: string, signature?: string) =>
  fetch(url('/internal/publish'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'x-relay-signature': signature } : {}) },
    body: text,
  })
const signed = async (body: unknown, opts: { secret?: string; t?: number } = {}) => {
  const text = JSON.stringify(body)
  return publishRaw(text, await sign(opts.secret ?? RELAY_SECRET, text, opts.t))
}
const batch = (tenant: string, data: unknown = {}) => ({ tenant, events: [{ seq: 1, topic: 't', data, ts: Date.now() }] })

/** Opens `n` streams for `tenant`, each with subject `sub(i)`, all of which must be accepted. */
const fill = async (tenant: string, n: number, sub: (i: number) => string) => {
  for (let i = 0; i < n; i++) {
    const h = await openStream(url(`/v1/tenants/${tenant}/events`), bearer(await mintToken({ tenant, sub: sub(i) })))
    expect(h.status, `stream ${i} of ${n} before the limit`).toBe(200)
    open.push(h)
  }
}

interface Case {
  name: string
  status: number
  code: string
  run: () => Promise<Response>
}

const cases: Case[] = [
  // — tokens —
  { name: 'no token at all', status: 401, code: 'TOKEN_MISSING', run: () => get(events) },
  { name: 'Authorization that is not Bearer', status: 401, code: 'TOKEN_INVALID', run: () => get(events, { authorization: 'Basic dXNlcjpwYXNz' }) },
  { name: 'garbage bearer token', status: 401, code: 'TOKEN_INVALID', run: () => get(events, bearer('not-a-jwt')) },
  { name: 'three garbage segments', status: 401, code: 'TOKEN_INVALID', run: () => get(events, bearer('a.b.c')) },
  { name: 'garbage access_token query', status: 401, code: 'TOKEN_INVALID', run: () => get(`${events}?access_token=%E2%98%83.%00.x`) },
  { name: 'cookie token with a broken %-escape', status: 401, code: 'TOKEN_INVALID', run: () => get(events, { cookie: 'edge_relay_token=%E0%A4%A' }) },
  { name: 'forged: HS256 with the wrong secret', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await t1({}, { secret: 'not-the-secret-0123456789abcdef' }))) },
  {
    name: 'tampered payload (signature of another payload)',
    status: 401,
    code: 'TOKEN_INVALID',
    run: async () => {
      const [h, , sig] = (await mintToken({ tenant: 'other' })).split('.')
      const forged = Buffer.from(JSON.stringify({ tenant: 't1', exp: nowS() + 3600 })).toString('base64url')
      return get(events, bearer(`${h}.${forged}.${sig}`))
    },
  },
  { name: 'expired token (beyond the clock skew)', status: 401, code: 'TOKEN_EXPIRED', run: async () => get(events, bearer(await t1({}, { expiresIn: nowS() - 120 }))) },
  { name: 'not yet valid (nbf in 10 minutes)', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await t1({ nbf: nowS() + 600 }))) },
  { name: 'alg: none', status: 401, code: 'TOKEN_INVALID', run: () => get(events, bearer(unsignedToken({ tenant: 't1', exp: nowS() + 3600 }))) },
  {
    name: 'HS/RS confusion: HS256 keyed with the RSA public key',
    status: 401,
    code: 'TOKEN_INVALID',
    run: async () => {
      const token = await new SignJWT({ tenant: 't1' })
        .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(rsa.pem))
      return get(events, bearer(token))
    },
  },
  { name: 'RS256 by an attacker key with the real kid', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await mintWith(attacker, { tenant: 't1' }))) },
  { name: 'RS256 with an unknown kid', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await mintWith(attacker, { tenant: 't1' }, { kid: 'nope' }))) },
  {
    name: 'an algorithm no key accepts (HS512)',
    status: 401,
    code: 'TOKEN_INVALID',
    run: async () =>
      get(events, bearer(await new SignJWT({ tenant: 't1' }).setProtectedHeader({ alg: 'HS512' }).setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET.repeat(3))))),
  },
  {
    name: 'no exp claim',
    status: 401,
    code: 'TOKEN_INVALID',
    run: async () => get(events, bearer(await new SignJWT({ tenant: 't1' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JWT_SECRET)))),
  },
  { name: 'no tenant claim', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await mintToken({ sub: 'x' }))) },
  { name: 'malformed tenant claim', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await t1({ tenant: 't1 OR 1=1' }))) },
  { name: 'topics claim not a list', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await t1({ topics: 'orders' }))) },
  { name: 'topic grant with CR/LF', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await t1({ topics: ['a\nevent: x'] }))) },
  // — tenants and topics —
  { name: 'wrong tenant', status: 403, code: 'TENANT_FORBIDDEN', run: async () => get(events, bearer(await mintToken({ tenant: 'good' }))) },
  { name: 'topic not granted', status: 403, code: 'TOPIC_FORBIDDEN', run: async () => get(`${events}?topics=users`, bearer(await t1({ topics: ['orders'] }))) },
  { name: 'topic outside a prefix grant', status: 403, code: 'TOPIC_FORBIDDEN', run: async () => get(`${events}?topics=users`, bearer(await t1({ topics: ['user.*'] }))) },
  { name: 'malformed tenant in the path', status: 400, code: 'INVALID_TENANT', run: async () => get('/v1/tenants/bad!tenant/events', bearer(await t1())) },
  { name: 'tenant id of 65 characters', status: 400, code: 'INVALID_TENANT', run: async () => get(`/v1/tenants/${'a'.repeat(65)}/events`, bearer(await t1())) },
  { name: 'tenant with an encoded NUL and slash', status: 400, code: 'INVALID_TENANT', run: async () => get('/v1/tenants/t1%00%2F..%2Fgood/events', bearer(await t1())) },
  { name: 'malformed topic', status: 400, code: 'INVALID_TOPIC', run: async () => get(`${events}?topics=a%20b`, bearer(await t1())) },
  { name: 'topic with CRLF (SSE field injection)', status: 400, code: 'INVALID_TOPIC', run: async () => get(`${events}?topics=a%0D%0Aevent:%20x`, bearer(await t1())) },
  { name: 'empty topic in the list', status: 400, code: 'INVALID_TOPIC', run: async () => get(`${events}?topics=a,,b`, bearer(await t1())) },
  {
    name: '65 topics (over the per-connection limit)',
    status: 400,
    code: 'INVALID_TOPIC',
    run: async () => get(`${events}?topics=${Array.from({ length: 65 }, (_, i) => `t${i}`).join(',')}`, bearer(await t1())),
  },
  { name: 'negative Last-Event-ID', status: 400, code: 'INVALID_LAST_EVENT_ID', run: async () => get(events, { ...bearer(await t1()), 'last-event-id': '-1' }) },
  { name: 'absurd Last-Event-ID (20 digits)', status: 400, code: 'INVALID_LAST_EVENT_ID', run: async () => get(events, { ...bearer(await t1()), 'last-event-id': '99999999999999999999' }) },
  { name: 'Last-Event-ID in exponent form', status: 400, code: 'INVALID_LAST_EVENT_ID', run: async () => get(events, { ...bearer(await t1()), 'last-event-id': '1e3' }) },
  { name: 'last_event_id query that is not a number', status: 400, code: 'INVALID_LAST_EVENT_ID', run: async () => get(`${events}?last_event_id=abc`, bearer(await t1())) },
  { name: 'oversized query string (6 kB)', status: 414, code: 'QUERY_TOO_LONG', run: async () => get(`${events}?topics=${'a'.repeat(6000)}`, bearer(await t1())) },
  { name: 'unknown route', status: 404, code: 'NOT_FOUND', run: () => get('/v1/tenants/t1/secrets') },
  // — tickets —
  { name: 'ticket request without a token', status: 401, code: 'TOKEN_MISSING', run: () => fetch(url('/v1/tickets'), { method: 'POST' }) },
  { name: 'ticket request with the token in the query only', status: 401, code: 'TOKEN_MISSING', run: async () => fetch(url(`/v1/tickets?access_token=${await t1()}`), { method: 'POST' }) },
  {
    name: 'a ticket cannot mint another ticket',
    status: 401,
    code: 'TOKEN_INVALID',
    run: async () => {
      const { ticket } = (await (await ticketFor(await t1())).json()) as { ticket: string }
      return ticketFor(ticket)
    },
  },
  { name: 'ticket for a topic the token does not grant', status: 403, code: 'TOPIC_FORBIDDEN', run: async () => ticketFor(await t1({ topics: ['orders.*'] }), { topics: ['orders.eu', 'users'] }) },
  { name: 'ticket wider than a prefix grant', status: 403, code: 'TOPIC_FORBIDDEN', run: async () => ticketFor(await t1({ topics: ['orders.*'] }), { topics: ['orders*'] }) },
  { name: 'ticket for another tenant', status: 403, code: 'TENANT_FORBIDDEN', run: async () => ticketFor(await t1(), { tenant: 'good' }) },
  {
    name: 'ticket request that is not JSON',
    status: 400,
    code: 'INVALID_BODY',
    run: async () => fetch(url('/v1/tickets'), { method: 'POST', headers: bearer(await t1()), body: '{"topics": [' }),
  },
  {
    name: 'ticket forged with EDGE_JWT_SECRET (not the ticket key)',
    status: 401,
    code: 'TOKEN_INVALID',
    run: async () => {
      const forged = await new SignJWT({ tenant: 't1', sexp: nowS() + 86_400 })
        .setProtectedHeader({ alg: 'HS256', typ: 'edge-relay-ticket+jwt' })
        .setExpirationTime('1m')
        .sign(new TextEncoder().encode(JWT_SECRET))
      return get(`${events}?access_token=${forged}`)
    },
  },
  {
    name: 'ticket used for another tenant',
    status: 403,
    code: 'TENANT_FORBIDDEN',
    run: async () => {
      const { ticket } = (await (await ticketFor(await t1())).json()) as { ticket: string }
      return get(`/v1/tenants/good/events?access_token=${ticket}`)
    },
  },
  // — relay → edge —
  { name: 'publish without a signature', status: 401, code: 'SIGNATURE_INVALID', run: () => publishRaw(JSON.stringify(batch('good'))) },
  { name: 'publish signed with the wrong secret', status: 401, code: 'SIGNATURE_INVALID', run: () => signed(batch('good'), { secret: 'wrong-relay-secret-0123456789' }) },
  { name: 'publish with a malformed signature header', status: 401, code: 'SIGNATURE_INVALID', run: () => publishRaw(JSON.stringify(batch('good')), 't=1,v1=zz') },
  { name: 'stale signature (6 minutes old)', status: 401, code: 'SIGNATURE_INVALID', run: () => signed(batch('good'), { t: nowS() - 360 }) },
  { name: 'signature from the future (7 minutes)', status: 401, code: 'SIGNATURE_INVALID', run: () => signed(batch('good'), { t: nowS() + 420 }) },
  {
    name: 'signed body altered in flight',
    status: 401,
    code: 'SIGNATURE_INVALID',
    run: async () => {
      const text = JSON.stringify(batch('hostile-a'))
      return publishRaw(text.replace('hostile-a', 'good'), await sign(RELAY_SECRET, text))
    },
  },
  {
    name: 'replayed signed request',
    status: 401,
    code: 'SIGNATURE_REPLAYED',
    run: async () => {
      const text = JSON.stringify(batch('hostile-replay'))
      const signature = await sign(RELAY_SECRET, text)
      expect((await publishRaw(text, signature)).status).toBe(200)
      return publishRaw(text, signature)
    },
  },
  { name: 'publish body over the size limit', status: 413, code: 'TOO_LARGE', run: () => signed(batch('hostile-big', { blob: 'x'.repeat(300 * 1024) })) },
  { name: 'one event over the event size limit', status: 413, code: 'TOO_LARGE', run: () => signed(batch('hostile-big', { blob: 'x'.repeat(5000) })) },
  { name: 'signed publish that is not JSON', status: 400, code: 'INVALID_BODY', run: async () => publishRaw('{"tenant":', await sign(RELAY_SECRET, '{"tenant":')) },
  { name: 'signed publish with a bad tenant', status: 400, code: 'INVALID_BODY', run: () => signed(batch('../good')) },
  {
    name: 'signed publish with a gap in its seqs',
    status: 400,
    code: 'INVALID_BODY',
    run: () => signed({ tenant: 'hostile-gap', events: [1, 3].map((seq) => ({ seq, topic: 't', data: {}, ts: 0 })) }),
  },
  // — floods —
  {
    name: `connection flood: stream ${PER_TENANT + 1} of one tenant`,
    status: 429,
    code: 'TOO_MANY',
    run: async () => {
      await fill('flood', PER_TENANT, (i) => `user${i}`)
      return get('/v1/tenants/flood/events', bearer(await mintToken({ tenant: 'flood', sub: 'late' })))
    },
  },
  {
    name: `connection flood: stream ${PER_SUBJECT + 1} of one subject`,
    status: 429,
    code: 'TOO_MANY',
    run: async () => {
      await fill('flood2', PER_SUBJECT, () => 'mallory')
      return get('/v1/tenants/flood2/events', bearer(await mintToken({ tenant: 'flood2', sub: 'mallory' })))
    },
  },
]

describe('hostile input at the edge', () => {
  it(`has at least 30 cases (${cases.length})`, () => expect(cases.length).toBeGreaterThanOrEqual(30))

  for (const c of cases)
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      published++
      await s.publish('good', published % 2 ? 'orders' : 'users', { i: published }) // the honest traffic goes on
      const res = await c.run()
      const type = res.headers.get('content-type') ?? ''
      const body = type.includes('application/json') ? await res.json() : (await res.body?.cancel(), type)
      expect({ status: res.status, body }).toMatchObject({ status: c.status, body: { error: { code: c.code, message: expect.any(String) } } })
      if (c.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
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
    expect((await get('/healthz')).status).toBe(200)
  })

  it('frees a connection slot when a stream closes', async () => {
    for (const h of open.splice(0)) h.close()
    const deadline = Date.now() + 20_000
    for (;;) {
      const h = await openStream(url('/v1/tenants/flood/events'), bearer(await mintToken({ tenant: 'flood', sub: 'late' })))
      if (h.status === 200) return h.close()
      expect(h.status).toBe(429)
      if (Date.now() > deadline) throw new Error('slots were never released after the streams closed')
      await new Promise((r) => setTimeout(r, 100))
    }
  })

  it('accepts a relay retry of the same batch (a new nonce and signature per attempt); publish stays idempotent', async () => {
    const body = { tenant: 'retry', events: [1, 2].map((seq) => ({ seq, topic: 't', data: { seq }, ts: 0 })) }
    const replies = await Promise.all([postBatch(s.edge.url, RELAY_SECRET, body), postBatch(s.edge.url, RELAY_SECRET, body), postBatch(s.edge.url, RELAY_SECRET, body)])
    expect(replies.map((r) => r.head)).toEqual([2, 2, 2])
    expect(s.edge.rooms.room('retry').since(0).map((e) => e.seq)).toEqual([1, 2])
  })
})
