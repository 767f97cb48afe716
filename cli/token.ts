import { readFileSync } from 'node:fs'
import { SignJWT } from 'jose'

/** Where `npm start` keeps the development EDGE_JWT_SECRET, under .data/ (gitignored) with the embedded database. */
export const DEV_SECRET_FILE = '.data/dev-edge-jwt-secret'

/** The development secret kept in `file`, if there is one long enough to use. */
export const readDevSecret = (file = DEV_SECRET_FILE): string | undefined => {
  try {
    const secret = readFileSync(file, 'utf8').trim()
    return secret.length >= 16 ? secret : undefined
  } catch {
    return undefined
  }
}

export interface TokenRequest {
  tenant: string
  /** Topics (or `prefix*` grants) the token grants; none: every topic. */
  topics?: string[]
  sub?: string
  /** Lifetime in seconds. */
  ttlS: number
}

/**
 * An HS256 app token signed with EDGE_JWT_SECRET, as your app's backend would mint one (`edge-relay token`): for
 * development, tests and the README's examples. Production apps mint their own, or use RS256/ES256 with a JWKS.
 */
export const mintToken = (secret: string, r: TokenRequest): Promise<string> =>
  new SignJWT({ tenant: r.tenant, ...(r.topics?.length ? { topics: r.topics } : {}), ...(r.sub ? { sub: r.sub } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + r.ttlS)
    .sign(new TextEncoder().encode(secret))
