import { errors as joseErrors, jwtVerify } from 'jose'
import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { QUERY, TOKEN_COOKIE } from '../shared/protocol.ts'
import { Claims } from '../shared/schema.ts'

export interface AuthOptions {
  /** HS256 shared secret (EDGE_JWT_SECRET). */
  jwtSecret: string
  /** Allowed clock skew in seconds for exp/nbf. */
  clockToleranceS?: number
}

/** Verifies a bearer token and returns its validated claims. */
export interface Auth {
  verify(token: string): Promise<Claims>
}

export const hs256Auth = (options: AuthOptions): Auth => {
  const key = new TextEncoder().encode(options.jwtSecret)
  return {
    async verify(token) {
      let payload: unknown
      try {
        // Pinning the algorithm list rejects `alg: none` and algorithm-confusion tokens.
        ;({ payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          requiredClaims: ['exp'],
          clockTolerance: options.clockToleranceS ?? 30,
        }))
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired) throw new RelayError('TOKEN_EXPIRED', 'token expired: get a new one')
        throw new RelayError('TOKEN_INVALID', `token rejected: ${(err as Error).message}`)
      }
      const claims = v.safeParse(Claims, payload)
      if (!claims.success) throw new RelayError('TOKEN_INVALID', `token claims invalid: ${v.summarize(claims.issues)}`)
      return claims.output
    },
  }
}

const cookieValue = (header: string | undefined, name: string): string | undefined => {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim())
  }
  return undefined
}

/** The token from `Authorization: Bearer`, the `access_token` query parameter, or the cookie — in that order. */
export const tokenFrom = (req: { header(name: string): string | undefined; query(name: string): string | undefined }) => {
  const authz = req.header('authorization')
  if (authz) {
    const m = /^Bearer\s+(\S+)$/i.exec(authz)
    if (!m) throw new RelayError('TOKEN_INVALID', 'Authorization must be "Bearer <token>"')
    return m[1]!
  }
  const token = req.query(QUERY.accessToken) ?? cookieValue(req.header('cookie'), TOKEN_COOKIE)
  if (!token) throw new RelayError('TOKEN_MISSING', 'send a token: Authorization: Bearer, ?access_token= or cookie')
  return token
}
