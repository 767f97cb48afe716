/** RS256/ES256 against a JWKS served from 127.0.0.1 or an inline key; iss/aud; clock skew; key configuration errors. */
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadEdgeEnv } from '../../edge/config.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { mintWith, signingKey, startJwksServer, type SigningKey } from '../support/jwks.ts'
import { edgeEnv } from '../support/stack.ts'
import { mintToken, RELAY_SECRET } from '../support/tokens.ts'

let rsa: SigningKey
let ec: SigningKey
let jwks: Awaited<ReturnType<typeof startJwksServer>>
const edges: NodeEdge[] = []

beforeAll(async () => {
  rsa = await signingKey('RS256', 'rsa-1')
  ec = await signingKey('ES256', 'ec-1')
  jwks = await startJwksServer([rsa])
})
afterAll(async () => {
  await Promise.all(edges.map((e) => e.close()))
  await jwks?.close()
})

const edge = async (env: Record<string, string>) => {
  const e = await startNodeEdge(edgeEnv(env))
  edges.push(e)
  return e
}

/** Status and error code of opening a stream for t1 with `token` (a stream that opens is closed at once). */
const attempt = async (e: NodeEdge, token: string) => {
  const res = await fetch(`${e.url}/v1/tenants/t1/events`, { headers: { authorization: `Bearer ${token}` } })
  if (res.status === 200) {
    await res.body?.cancel()
    return { status: 200 }
  }
  const body = (await res.json()) as { error: { code: string } }
  return { status: res.status, code: body.error.code, retryAfter: res.headers.get('retry-after') }
}

describe('JWKS', () => {
  it('accepts RS256 and ES256 from the key set and refetches it once for a new kid (rotation)', async () => {
    const e = await edge({ EDGE_JWKS_URL: jwks.url })
    expect(await attempt(e, await mintWith(rsa, { tenant: 't1' }))).toEqual({ status: 200 })
    expect(await attempt(e, await mintWith(rsa, { tenant: 't1' }))).toEqual({ status: 200 })
    const before = jwks.state.fetches
    jwks.state.keys = [rsa, ec] // the identity provider publishes a new key
    // An unknown kid refetches the key set at most once per 30 s cooldown: let the edge's clock pass it.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: Date.now() + 31_000 })
    try {
      expect(await attempt(e, await mintWith(ec, { tenant: 't1' }))).toEqual({ status: 200 })
      expect(jwks.state.fetches).toBe(before + 1)
      expect(await attempt(e, await mintWith(ec, { tenant: 't1' }))).toEqual({ status: 200 })
      expect(jwks.state.fetches).toBe(before + 1) // cached
    } finally {
      vi.useRealTimers()
    }
  })

  it('does not refetch on every unknown kid within the cooldown (a forger cannot hammer the identity provider)', async () => {
    const e = await edge({ EDGE_JWKS_URL: jwks.url })
    expect(await attempt(e, await mintWith(rsa, { tenant: 't1' }))).toEqual({ status: 200 })
    const before = jwks.state.fetches
    const stranger = await signingKey('RS256', 'unknown')
    for (let i = 0; i < 5; i++)
      expect(await attempt(e, await mintWith(stranger, { tenant: 't1' }))).toMatchObject({ status: 401, code: 'TOKEN_INVALID' })
    expect(jwks.state.fetches).toBe(before)
  })

  it('answers 503 NOT_READY with Retry-After when the key set cannot be fetched', async () => {
    const e = await edge({ EDGE_JWKS_URL: jwks.url })
    jwks.state.down = true
    try {
      expect(await attempt(e, await mintWith(rsa, { tenant: 't1' }))).toEqual({ status: 503, code: 'NOT_READY', retryAfter: '5' })
    } finally {
      jwks.state.down = false
    }
    // HS256 tokens do not depend on the key set.
    expect(await attempt(e, await mintToken({ tenant: 't1' }))).toEqual({ status: 200 })
  })
})

describe('inline public key', () => {
  it('accepts RS256 from a PEM key; refuses other keys and HS256 when no secret is set; still issues tickets', async () => {
    const e = await edge({ EDGE_JWT_SECRET: '', EDGE_JWT_PUBLIC_KEY: rsa.pem, EDGE_TICKET_SECRET: 'ticket-secret-0123456789abcdef' })
    const token = await mintWith(rsa, { tenant: 't1', sub: 'u1' })
    expect(await attempt(e, token)).toEqual({ status: 200 })
    expect(await attempt(e, await mintWith(ec, { tenant: 't1' }))).toMatchObject({ status: 401, code: 'TOKEN_INVALID' })
    expect(await attempt(e, await mintToken({ tenant: 't1' }))).toMatchObject({ status: 401, code: 'TOKEN_INVALID' })
    const res = await fetch(`${e.url}/v1/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const { ticket } = (await res.json()) as { ticket: string }
    expect(await attempt(e, ticket)).toEqual({ status: 200 })
  })

  it('accepts ES256 from a JWK', async () => {
    const e = await edge({ EDGE_JWT_PUBLIC_KEY: JSON.stringify(ec.jwk) })
    expect(await attempt(e, await mintWith(ec, { tenant: 't1' }))).toEqual({ status: 200 })
    expect(await attempt(e, await mintWith(rsa, { tenant: 't1' }))).toMatchObject({ status: 401, code: 'TOKEN_INVALID' })
  })

  it('refuses to start with a key that is not a public key, or with no way to verify tokens', async () => {
    const bad = JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' })
    await expect(startNodeEdge(edgeEnv({ EDGE_JWT_PUBLIC_KEY: bad }))).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    expect(() => loadEdgeEnv({ RELAY_SECRET })).toThrow(/EDGE_JWT_SECRET.*EDGE_JWKS_URL/)
    expect(() => loadEdgeEnv({ RELAY_SECRET, EDGE_JWKS_URL: 'http://127.0.0.1:1/jwks' })).toThrow(/EDGE_TICKET_SECRET/)
  })
})

describe('claims checks', () => {
  it('requires iss and aud when configured', async () => {
    const e = await edge({ EDGE_JWT_ISSUER: 'https://idp.example', EDGE_JWT_AUDIENCE: 'edge-relay' })
    expect(await attempt(e, await mintToken({ tenant: 't1', iss: 'https://idp.example', aud: 'edge-relay' }))).toEqual({ status: 200 })
    expect(await attempt(e, await mintToken({ tenant: 't1', iss: 'https://evil.example', aud: 'edge-relay' }))).toMatchObject({
      status: 401,
      code: 'TOKEN_INVALID',
    })
    expect(await attempt(e, await mintToken({ tenant: 't1', iss: 'https://idp.example' }))).toMatchObject({
      status: 401,
      code: 'TOKEN_INVALID',
    })
  })

  it('allows a small clock skew (30 s) on exp and nbf, and no more', async () => {
    const e = await edge({})
    const now = Math.floor(Date.now() / 1000)
    const hs = (claims: Record<string, unknown>) =>
      new SignJWT({ tenant: 't1', ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('test-jwt-secret-0123456789abcdef'))
    expect(await attempt(e, await hs({ exp: now + 3600, nbf: now + 10 }))).toEqual({ status: 200 })
    expect(await attempt(e, await hs({ exp: now - 10 }))).toEqual({ status: 200 }) // then ends at once with reauth
    expect(await attempt(e, await hs({ exp: now - 60 }))).toMatchObject({ status: 401, code: 'TOKEN_EXPIRED' })
    expect(await attempt(e, await hs({ exp: now + 3600, nbf: now + 60 }))).toMatchObject({ status: 401, code: 'TOKEN_INVALID' })
  })
})

describe('where tokens may travel', () => {
  it('with EDGE_QUERY_TOKENS=ticket, a URL carries tickets only; app tokens go in the header', async () => {
    const e = await edge({ EDGE_QUERY_TOKENS: 'ticket' })
    const app = await mintToken({ tenant: 't1' })
    const viaQuery = async (token: string) => {
      const res = await fetch(`${e.url}/v1/tenants/t1/events?access_token=${token}`)
      if (res.status === 200) return (await res.body?.cancel(), { status: 200 })
      return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code }
    }
    expect(await viaQuery(app)).toEqual({ status: 401, code: 'TOKEN_INVALID' })
    expect(await attempt(e, app)).toEqual({ status: 200 })
    const res = await fetch(`${e.url}/v1/tickets`, { method: 'POST', headers: { authorization: `Bearer ${app}` } })
    expect(await viaQuery(((await res.json()) as { ticket: string }).ticket)).toEqual({ status: 200 })
  })
})
