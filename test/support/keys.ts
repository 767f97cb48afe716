/** Signing keys and token forgeries for tests; runtime-neutral (Node and workerd alike). */
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'

/** base64url of a UTF-8 string, without Buffer. */
export const b64url = (text: string) =>
  btoa(String.fromCharCode(...new TextEncoder().encode(text)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')

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
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
    pem: await exportSPKI(publicKey),
  }
}

/** A token signed with `key` (header kid = key.kid unless overridden). */
export const mintWith = (key: SigningKey, claims: JWTPayload, opts: { kid?: string; expiresIn?: string | number } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: opts.kid ?? key.kid })
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '1h')
    .sign(key.privateKey)

/** An unsigned `alg: none` token (what a forger sends hoping the verifier trusts the header). */
export const unsignedToken = (claims: Record<string, unknown>) => {
  const b64 = (o: unknown) => b64url(JSON.stringify(o))
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`
}
