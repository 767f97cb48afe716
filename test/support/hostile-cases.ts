/**
 * The hostile-input table, runtime-neutral: each case is a request and the status and error code it must get. The
 * Node edge runs it in test/integration/hostile.test.ts; any other edge (workerd) can run it with its own `fetch`.
 */
import { SignJWT } from 'jose'
import { maxPublishBytes } from '../../shared/protocol.ts'
import { sign } from '../../shared/sign.ts'
import { b64url, mintWith, unsignedToken, type SigningKey } from './keys.ts'
import { JWT_SECRET, mintToken, RELAY_SECRET } from './tokens.ts'

/** The edge under test. Its env: EDGE_JWT_SECRET = JWT_SECRET, a JWKS holding `rsa`, RELAY_SECRET, and the limits below. */
export interface Target {
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** The identity provider's key (in the edge's JWKS) and an attacker's key with the same kid. */
  rsa: SigningKey
  attacker: SigningKey
  /** EDGE_MAX_CONNECTIONS_PER_TENANT / _PER_SUBJECT of the edge under test. */
  perTenant: number
  perSubject: number
  /** Streams the flood cases opened and hold open; the caller cancels them. */
  held: Response[]
}

export interface Case {
  name: string
  status: number
  code: string
  run: () => Promise<Response>
}

const nowS = () => Math.floor(Date.now() / 1000)
const events = '/v1/tenants/t1/events'
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const t1 = (claims: Record<string, unknown> = {}, opts?: Parameters<typeof mintToken>[1]) => mintToken({ tenant: 't1', ...claims }, opts)

/** Status and body of a case's response (a stream that opened by mistake is cancelled). */
export const outcome = async (res: Response) => {
  const type = res.headers.get('content-type') ?? ''
  const body = type.includes('application/json') ? await res.json() : (await res.body?.cancel(), type)
  return { status: res.status, body, retryAfter: res.headers.get('retry-after') }
}

/** Tokens, tickets, tenants, topics, Last-Event-ID, query size and connection floods: the auth path. */
export const authCases = (t: Target): Case[] => {
  const get = (path: string, headers: Record<string, string> = {}) => t.fetch(path, { headers })
  const ticketFor = (token: string, body: unknown = {}) =>
    t.fetch('/v1/tickets', {
      method: 'POST',
      headers: { ...bearer(token), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  /** Opens `n` streams for `tenant`, each with subject `sub(i)`; all must be accepted. */
  const fill = async (tenant: string, n: number, sub: (i: number) => string) => {
    for (let i = 0; i < n; i++) {
      const res = await get(`/v1/tenants/${tenant}/events`, bearer(await mintToken({ tenant, sub: sub(i) })))
      if (res.status !== 200) throw new Error(`stream ${i} of ${n} before the limit got ${res.status}: ${await res.text()}`)
      t.held.push(res)
    }
  }
  return [
    // — tokens —
    { name: 'no token at all', status: 401, code: 'TOKEN_MISSING', run: () => get(events) },
    {
      name: 'Authorization that is not Bearer',
      status: 401,
      code: 'TOKEN_INVALID',
      run: () => get(events, { authorization: 'Basic dXNlcjpwYXNz' }),
    },
    { name: 'garbage bearer token', status: 401, code: 'TOKEN_INVALID', run: () => get(events, bearer('not-a-jwt')) },
    { name: 'three garbage segments', status: 401, code: 'TOKEN_INVALID', run: () => get(events, bearer('a.b.c')) },
    { name: 'garbage access_token query', status: 401, code: 'TOKEN_INVALID', run: () => get(`${events}?access_token=%E2%98%83.%00.x`) },
    {
      name: 'cookie token with a broken %-escape',
      status: 401,
      code: 'TOKEN_INVALID',
      run: () => get(events, { cookie: 'edge_relay_token=%E0%A4%A' }),
    },
    {
      name: 'forged: HS256 with the wrong secret',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await t1({}, { secret: 'not-the-secret-0123456789abcdef' }))),
    },
    {
      name: 'tampered payload (signature of another payload)',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => {
        const [h, , sig] = (await mintToken({ tenant: 'other' })).split('.')
        const forged = b64url(JSON.stringify({ tenant: 't1', exp: nowS() + 3600 }))
        return get(events, bearer(`${h}.${forged}.${sig}`))
      },
    },
    {
      name: 'expired token (beyond the clock skew)',
      status: 401,
      code: 'TOKEN_EXPIRED',
      run: async () => get(events, bearer(await t1({}, { expiresIn: nowS() - 120 }))),
    },
    {
      name: 'not yet valid (nbf in 10 minutes)',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await t1({ nbf: nowS() + 600 }))),
    },
    {
      name: 'alg: none',
      status: 401,
      code: 'TOKEN_INVALID',
      run: () => get(events, bearer(unsignedToken({ tenant: 't1', exp: nowS() + 3600 }))),
    },
    {
      name: 'HS/RS confusion: HS256 keyed with the RSA public key',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => {
        const token = await new SignJWT({ tenant: 't1' })
          .setProtectedHeader({ alg: 'HS256', kid: t.rsa.kid })
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(t.rsa.pem))
        return get(events, bearer(token))
      },
    },
    {
      name: 'RS256 by an attacker key with the real kid',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await mintWith(t.attacker, { tenant: 't1' }))),
    },
    {
      name: 'RS256 with an unknown kid',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await mintWith(t.attacker, { tenant: 't1' }, { kid: 'nope' }))),
    },
    {
      name: 'an algorithm no key accepts (HS512)',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () =>
        get(
          events,
          bearer(
            await new SignJWT({ tenant: 't1' })
              .setProtectedHeader({ alg: 'HS512' })
              .setExpirationTime('1h')
              .sign(new TextEncoder().encode(JWT_SECRET.repeat(3))),
          ),
        ),
    },
    {
      name: 'no exp claim',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () =>
        get(
          events,
          bearer(await new SignJWT({ tenant: 't1' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JWT_SECRET))),
        ),
    },
    { name: 'no tenant claim', status: 401, code: 'TOKEN_INVALID', run: async () => get(events, bearer(await mintToken({ sub: 'x' }))) },
    {
      name: 'malformed tenant claim',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await t1({ tenant: 't1 OR 1=1' }))),
    },
    {
      name: 'topics claim not a list',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await t1({ topics: 'orders' }))),
    },
    {
      name: 'topic grant with CR/LF',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => get(events, bearer(await t1({ topics: ['a\nevent: x'] }))),
    },
    // — tenants and topics —
    {
      name: 'wrong tenant',
      status: 403,
      code: 'TENANT_FORBIDDEN',
      run: async () => get(events, bearer(await mintToken({ tenant: 'good' }))),
    },
    {
      name: 'topic not granted',
      status: 403,
      code: 'TOPIC_FORBIDDEN',
      run: async () => get(`${events}?topics=users`, bearer(await t1({ topics: ['orders'] }))),
    },
    {
      name: 'topic outside a prefix grant',
      status: 403,
      code: 'TOPIC_FORBIDDEN',
      run: async () => get(`${events}?topics=users`, bearer(await t1({ topics: ['user.*'] }))),
    },
    {
      name: 'malformed tenant in the path',
      status: 400,
      code: 'INVALID_TENANT',
      run: async () => get('/v1/tenants/bad!tenant/events', bearer(await t1())),
    },
    {
      name: 'tenant id of 65 characters',
      status: 400,
      code: 'INVALID_TENANT',
      run: async () => get(`/v1/tenants/${'a'.repeat(65)}/events`, bearer(await t1())),
    },
    {
      name: 'tenant with an encoded NUL and slash',
      status: 400,
      code: 'INVALID_TENANT',
      run: async () => get('/v1/tenants/t1%00%2F..%2Fgood/events', bearer(await t1())),
    },
    { name: 'malformed topic', status: 400, code: 'INVALID_TOPIC', run: async () => get(`${events}?topics=a%20b`, bearer(await t1())) },
    {
      name: 'topic with CRLF (SSE field injection)',
      status: 400,
      code: 'INVALID_TOPIC',
      run: async () => get(`${events}?topics=a%0D%0Aevent:%20x`, bearer(await t1())),
    },
    {
      name: 'empty topic in the list',
      status: 400,
      code: 'INVALID_TOPIC',
      run: async () => get(`${events}?topics=a,,b`, bearer(await t1())),
    },
    {
      name: '65 topics (over the per-connection limit)',
      status: 400,
      code: 'INVALID_TOPIC',
      run: async () => get(`${events}?topics=${Array.from({ length: 65 }, (_, i) => `t${i}`).join(',')}`, bearer(await t1())),
    },
    {
      name: 'negative Last-Event-ID',
      status: 400,
      code: 'INVALID_LAST_EVENT_ID',
      run: async () => get(events, { ...bearer(await t1()), 'last-event-id': '-1' }),
    },
    {
      name: 'absurd Last-Event-ID (20 digits)',
      status: 400,
      code: 'INVALID_LAST_EVENT_ID',
      run: async () => get(events, { ...bearer(await t1()), 'last-event-id': '99999999999999999999' }),
    },
    {
      name: 'Last-Event-ID in exponent form',
      status: 400,
      code: 'INVALID_LAST_EVENT_ID',
      run: async () => get(events, { ...bearer(await t1()), 'last-event-id': '1e3' }),
    },
    {
      name: 'last_event_id query that is not a number',
      status: 400,
      code: 'INVALID_LAST_EVENT_ID',
      run: async () => get(`${events}?last_event_id=abc`, bearer(await t1())),
    },
    {
      name: 'topics with a broken %-escape',
      status: 400,
      code: 'INVALID_TOPIC',
      run: async () => get(`${events}?topics=%E0%A4%A`, bearer(await t1())),
    },
    { name: 'access_token that is a lone %', status: 401, code: 'TOKEN_INVALID', run: () => get(`${events}?access_token=%`) },
    {
      name: 'oversized query string (6 kB)',
      status: 414,
      code: 'QUERY_TOO_LONG',
      run: async () => get(`${events}?topics=${'a'.repeat(6000)}`, bearer(await t1())),
    },
    { name: 'unknown route', status: 404, code: 'NOT_FOUND', run: () => get('/v1/tenants/t1/secrets') },
    // — tickets —
    { name: 'ticket request without a token', status: 401, code: 'TOKEN_MISSING', run: () => t.fetch('/v1/tickets', { method: 'POST' }) },
    {
      name: 'ticket request with the token in the query only',
      status: 401,
      code: 'TOKEN_MISSING',
      run: async () => t.fetch(`/v1/tickets?access_token=${await t1()}`, { method: 'POST' }),
    },
    {
      name: 'a ticket cannot mint another ticket',
      status: 401,
      code: 'TOKEN_INVALID',
      run: async () => {
        const { ticket } = (await (await ticketFor(await t1())).json()) as { ticket: string }
        return ticketFor(ticket)
      },
    },
    {
      name: 'ticket for a topic the token does not grant',
      status: 403,
      code: 'TOPIC_FORBIDDEN',
      run: async () => ticketFor(await t1({ topics: ['orders.*'] }), { topics: ['orders.eu', 'users'] }),
    },
    {
      name: 'ticket wider than a prefix grant',
      status: 403,
      code: 'TOPIC_FORBIDDEN',
      run: async () => ticketFor(await t1({ topics: ['orders.*'] }), { topics: ['orders*'] }),
    },
    {
      name: 'ticket for another tenant',
      status: 403,
      code: 'TENANT_FORBIDDEN',
      run: async () => ticketFor(await t1(), { tenant: 'good' }),
    },
    {
      name: 'ticket for 65 topics',
      status: 400,
      code: 'INVALID_TOPIC',
      run: async () => ticketFor(await t1(), { topics: Array.from({ length: 65 }, (_, i) => `t${i}`) }),
    },
    {
      name: 'ticket request body of 20 kB',
      status: 413,
      code: 'TOO_LARGE',
      run: async () => ticketFor(await t1(), { topics: ['a'], pad: 'x'.repeat(20_000) }),
    },
    {
      name: 'ticket request that is not JSON',
      status: 400,
      code: 'INVALID_BODY',
      run: async () => t.fetch('/v1/tickets', { method: 'POST', headers: bearer(await t1()), body: '{"topics": [' }),
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
    // — floods —
    {
      name: `connection flood: stream ${t.perTenant + 1} of one tenant`,
      status: 429,
      code: 'TOO_MANY',
      run: async () => {
        await fill('flood', t.perTenant, (i) => `user${i}`)
        return get('/v1/tenants/flood/events', bearer(await mintToken({ tenant: 'flood', sub: 'late' })))
      },
    },
    {
      name: `connection flood: stream ${t.perSubject + 1} of one subject`,
      status: 429,
      code: 'TOO_MANY',
      run: async () => {
        await fill('flood2', t.perSubject, () => 'mallory')
        return get('/v1/tenants/flood2/events', bearer(await mintToken({ tenant: 'flood2', sub: 'mallory' })))
      },
    },
  ]
}

/** Relay → edge: signatures, replays, sizes and body shapes. */
export const relayCases = (t: Target): Case[] => {
  const publishRaw = (text: string, signature?: string) =>
    t.fetch('/internal/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(signature ? { 'x-relay-signature': signature } : {}) },
      body: text,
    })
  const signed = async (body: unknown, opts: { secret?: string; t?: number } = {}) => {
    const text = JSON.stringify(body)
    return publishRaw(text, await sign(opts.secret ?? RELAY_SECRET, text, opts.t))
  }
  const batch = (tenant: string, data: unknown = {}) => ({
    tenant,
    events: [{ seq: 1, topic: 't', data: JSON.stringify(data), ts: Date.now() }],
  })
  return [
    { name: 'publish without a signature', status: 401, code: 'SIGNATURE_INVALID', run: () => publishRaw(JSON.stringify(batch('good'))) },
    {
      name: 'publish signed with the wrong secret',
      status: 401,
      code: 'SIGNATURE_INVALID',
      run: () => signed(batch('good'), { secret: 'wrong-relay-secret-0123456789' }),
    },
    {
      name: 'publish with a malformed signature header',
      status: 401,
      code: 'SIGNATURE_INVALID',
      run: () => publishRaw(JSON.stringify(batch('good')), 't=1,v1=zz'),
    },
    {
      name: 'stale signature (6 minutes old)',
      status: 401,
      code: 'SIGNATURE_INVALID',
      run: () => signed(batch('good'), { t: nowS() - 360 }),
    },
    {
      name: 'signature from the future (7 minutes)',
      status: 401,
      code: 'SIGNATURE_INVALID',
      run: () => signed(batch('good'), { t: nowS() + 420 }),
    },
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
        const first = await publishRaw(text, signature)
        if (first.status !== 200) throw new Error(`the first delivery should pass, got ${first.status}: ${await first.text()}`)
        return publishRaw(text, signature)
      },
    },
    // The Node edge under test accepts events of up to 4096 bytes (hostile.test.ts), which sets its body limit.
    {
      name: 'publish body over the size limit',
      status: 413,
      code: 'TOO_LARGE',
      run: () => signed(batch('hostile-big', { blob: 'x'.repeat(maxPublishBytes(4096)) })),
    },
    {
      name: 'one event over the event size limit',
      status: 413,
      code: 'TOO_LARGE',
      run: () => signed(batch('hostile-big', { blob: 'x'.repeat(5000) })),
    },
    {
      name: 'signed publish that is not JSON',
      status: 400,
      code: 'INVALID_BODY',
      run: async () => publishRaw('{"tenant":', await sign(RELAY_SECRET, '{"tenant":')),
    },
    { name: 'signed publish with a bad tenant', status: 400, code: 'INVALID_BODY', run: () => signed(batch('../good')) },
    {
      name: 'signed publish with a gap in its seqs',
      status: 400,
      code: 'INVALID_BODY',
      run: () => signed({ tenant: 'hostile-gap', events: [1, 3].map((seq) => ({ seq, topic: 't', data: '{}', ts: 0 })) }),
    },
  ]
}
