import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'

export interface SigningKey {
  alg: 'RS256' | 'ES256'
  kid: string
  privateKey: CryptoKey
  publicKey: CryptoKey
  jwk: JWK
  pem: string
}

/** A fresh RS256 or ES256 key pair with a kid, as an identity provider would hold it. */
export const signingKey = async (alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> => {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, pem: await exportSPKI(publicKey) }
}

/** A token signed with `key` (header kid = key.kid unless overridden). */
export const mintWith = (key: SigningKey, claims: JWTPayload, opts: { kid?: string; expiresIn?: string | number } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: opts.kid ?? key.kid })
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '1h')
    .sign(key.privateKey)

/** Serves a JWKS on 127.0.0.1 (port 0); `keys` may be changed at any time (rotation), `fetches` counts requests. */
export const startJwksServer = async (keys: SigningKey[]) => {
  const state = { keys, fetches: 0, down: false }
  const server = createServer((req, res) => {
    state.fetches++
    if (state.down) return res.writeHead(500).end('down')
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys.map((k) => k.jwk) }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    state,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  }
}

/** An unsigned `alg: none` token (what a forger sends hoping the verifier trusts the header). */
export const unsignedToken = (claims: Record<string, unknown>) => {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`
}
