import { createRemoteJWKSet, errors as joseErrors, importJWK, importSPKI, type JWK, type JWTVerifyGetKey } from 'jose'
import { RelayError } from '../shared/errors.ts'

type InlineKey = { alg: string; kid?: string; key: CryptoKey }

const invalid = (why: string) => new RelayError('CONFIG_INVALID', `EDGE_JWT_PUBLIC_KEY ${why}`)

/** An inline public key: a JWK (its kty/crv pick RS256 or ES256) or SPKI PEM (whichever of the two imports). */
const importInline = async (text: string): Promise<InlineKey> => {
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    let jwk: JWK
    try {
      jwk = JSON.parse(trimmed) as JWK
    } catch {
      throw invalid('is neither valid JSON (a JWK) nor PEM')
    }
    if (jwk.d !== undefined) throw invalid('is a private key: give the public half')
    const alg = jwk.alg ?? (jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'EC' && jwk.crv === 'P-256' ? 'ES256' : undefined)
    if (alg !== 'RS256' && alg !== 'ES256') throw invalid('must be an RSA (RS256) or P-256 EC (ES256) key')
    return { alg, ...(jwk.kid ? { kid: jwk.kid } : {}), key: (await importJWK(jwk, alg)) as CryptoKey }
  }
  for (const alg of ['RS256', 'ES256']) {
    try {
      return { alg, key: await importSPKI(trimmed, alg) }
    } catch {
      // not this key type: try the next
    }
  }
  throw invalid('is not an RSA or P-256 EC public key in SPKI PEM ("-----BEGIN PUBLIC KEY-----")')
}

/** The JWKS is refetched on an unknown kid at most this often (a forger cannot hammer the identity provider)… */
const JWKS_COOLDOWN_MS = 30_000
/** …and in any case at least this often (a revoked key stops working within it). */
const JWKS_MAX_AGE_MS = 600_000

/**
 * The RS256/ES256 key resolver for jose: the inline key when its alg (and kid, if both have one) match the token,
 * else the remote JWKS, which jose caches and refetches on an unknown kid (at most once per JWKS_COOLDOWN_MS).
 * Undefined when neither is configured.
 */
export const asymmetricKeys = (options: { jwksUrl: string | undefined; publicKey: string | undefined }): JWTVerifyGetKey | undefined => {
  const jwks = { cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS, timeoutDuration: 5_000 }
  const remote = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl), jwks) : undefined
  const inline = options.publicKey ? importInline(options.publicKey) : undefined
  inline?.catch(() => {}) // reported at start by createEdge (checkPublicKey), and on use
  if (!remote && !inline) return undefined
  return async (header, token) => {
    if (inline) {
      const k = await inline
      if (k.alg === header.alg && (!header.kid || !k.kid || header.kid === k.kid)) return k.key
    }
    if (!remote) throw new joseErrors.JWKSNoMatchingKey()
    try {
      return await remote(header, token)
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err
      // Anything else (unreachable, timeout, non-200, not a key set) is the key set's fault, not the client's.
      throw new RelayError('NOT_READY', 'cannot fetch the signing keys (JWKS) right now: retry shortly', { 'retry-after': '5' })
    }
  }
}

/** Imports the inline key once, so a bad EDGE_JWT_PUBLIC_KEY fails at startup rather than on the first request. */
export const checkPublicKey = async (publicKey: string | undefined): Promise<void> => {
  if (publicKey) await importInline(publicKey)
}
