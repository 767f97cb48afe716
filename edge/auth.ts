import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { QUERY, TICKET_TYP, TOKEN_COOKIE } from '../shared/protocol.ts'
import { Claims, TicketClaims } from '../shared/schema.ts'
import type { EdgeSettings } from './config.ts'
import { asymmetricKeys } from './keys.ts'
import { ticketKey, signTicket } from './ticket.ts'

/** What createAuth reads of the edge's settings. */
export type AuthSettings = Pick<
  EdgeSettings,
  Extract<keyof EdgeSettings, `EDGE_JWT_${string}` | `EDGE_JWKS_${string}` | `EDGE_TICKET_${string}`>
>

/** Who is asking: validated claims, what kind of token carried them, and when a stream opened with it must end. */
export type Principal = Claims & {
  kind: 'app' | 'ticket'
  /** ms since epoch: the app token's exp (a ticket carries it as `sexp`). */
  expiresAt: number
}

export interface IssuedTicket {
  ticket: string
  /** ms since epoch */
  expiresAt: number
}

/** Verifies tokens and issues tickets. */
export interface Auth {
  /** A token that may open a stream: an app token or a ticket. */
  verify(token: string): Promise<Principal>
  /** An app token only: tickets are for streams and never mint further tickets. */
  verifyApp(token: string): Promise<Principal>
  /** A ticket for `principal`'s tenant and `topics` (already checked to be within its grants). */
  issueTicket(principal: Principal, topics: string[] | undefined): Promise<IssuedTicket>
}

const ASYMMETRIC = ['RS256', 'ES256']
/** Clock skew allowed on an app token's exp/nbf/iat: the identity provider's clock is not ours. */
const CLOCK_SKEW_S = 30
/** Edges issue and check tickets themselves: only their own clocks' drift to allow for. */
const TICKET_SKEW_S = 2

/** Maps jose's failures to our codes (key-set fetch failures arrive as NOT_READY from keys.ts). */
const rejection = (err: unknown): RelayError => {
  if (err instanceof RelayError) return err
  if (err instanceof joseErrors.JWTExpired) return new RelayError('TOKEN_EXPIRED', 'token expired: get a new one')
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return new RelayError('TOKEN_INVALID', `token rejected: ${err.message} (claim ${err.claim})`)
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new RelayError('TOKEN_INVALID', 'token rejected: no key matches its kid')
  return new RelayError('TOKEN_INVALID', `token rejected: ${(err as Error)?.message ?? 'malformed'}`)
}

/**
 * A `topics: []` claim grants nothing: a stream opened with it would stay silent forever and look like an outage.
 * Refused with the reason instead (an absent `topics` is what grants every topic).
 */
const grantingSomeTopic = <C extends { topics?: readonly string[] | undefined }>(claims: C): C => {
  const tip = 'list at least one topic, or omit topics to grant all'
  if (claims.topics?.length === 0)
    throw new RelayError('TOPIC_FORBIDDEN', `token grants no topics (its topics claim is an empty list): ${tip}`)
  return claims
}

const headerOf = (token: string) => {
  if (token.length > 16_384) throw new RelayError('TOKEN_INVALID', 'token is too long')
  try {
    return decodeProtectedHeader(token)
  } catch {
    throw new RelayError('TOKEN_INVALID', 'token is not a JWT (expected header.payload.signature)')
  }
}

/**
 * Token verification with the algorithm pinned per key type: HS256 only against the shared secret, RS256/ES256
 * only against the public keys. `alg: none` and HS/RS confusion (an HS256 token "signed" with the public key) find no
 * key and fail.
 */
export const createAuth = (settings: AuthSettings): Auth => {
  const { EDGE_JWT_SECRET: jwtSecret, EDGE_JWT_ISSUER: issuer, EDGE_JWT_AUDIENCE: audience } = settings
  const secret = jwtSecret ? new TextEncoder().encode(jwtSecret) : undefined
  const publicKeys: JWTVerifyGetKey | undefined = asymmetricKeys({
    jwksUrl: settings.EDGE_JWKS_URL,
    publicKey: settings.EDGE_JWT_PUBLIC_KEY,
  })
  const ticketSecret = settings.EDGE_TICKET_SECRET ?? jwtSecret
  const ticketKeyP = ticketSecret ? ticketKey(ticketSecret) : undefined
  const common: JWTVerifyOptions = { requiredClaims: ['exp'], clockTolerance: CLOCK_SKEW_S }
  const appOptions: JWTVerifyOptions = { ...common, ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}) }
  const accepted = [...(secret ? ['HS256'] : []), ...(publicKeys ? ASYMMETRIC : [])].join(', ')

  const verifyApp = async (token: string): Promise<Principal> => {
    const { alg, typ } = headerOf(token)
    if (typ === TICKET_TYP) throw new RelayError('TOKEN_INVALID', 'a ticket cannot be used here: send the app token')
    let payload: unknown
    try {
      if (alg === 'HS256' && secret) ({ payload } = await jwtVerify(token, secret, { ...appOptions, algorithms: ['HS256'] }))
      else if (alg && ASYMMETRIC.includes(alg) && publicKeys)
        ({ payload } = await jwtVerify(token, publicKeys, { ...appOptions, algorithms: ASYMMETRIC }))
      else throw new RelayError('TOKEN_INVALID', `token algorithm ${JSON.stringify(alg)} is not accepted here (accepted: ${accepted})`)
    } catch (err) {
      throw rejection(err)
    }
    const claims = v.safeParse(Claims, payload)
    if (!claims.success) throw new RelayError('TOKEN_INVALID', `token claims invalid: ${v.summarize(claims.issues)}`)
    return { ...grantingSomeTopic(claims.output), kind: 'app', expiresAt: claims.output.exp * 1000 }
  }

  const verifyTicket = async (token: string): Promise<Principal> => {
    if (!ticketKeyP) throw new RelayError('TOKEN_INVALID', 'this edge issues no tickets')
    let payload: unknown
    try {
      ;({ payload } = await jwtVerify(token, await ticketKeyP, {
        ...common,
        clockTolerance: TICKET_SKEW_S,
        algorithms: ['HS256'],
        typ: TICKET_TYP,
      }))
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired)
        throw new RelayError('TOKEN_EXPIRED', 'ticket expired (tickets live seconds): fetch a new one from POST /v1/tickets')
      throw rejection(err)
    }
    const claims = v.safeParse(TicketClaims, payload)
    if (!claims.success) throw new RelayError('TOKEN_INVALID', `ticket claims invalid: ${v.summarize(claims.issues)}`)
    const { sexp, ...rest } = grantingSomeTopic(claims.output)
    return { ...rest, kind: 'ticket', expiresAt: sexp * 1000 }
  }

  return {
    verifyApp,
    async verify(token) {
      return headerOf(token).typ === TICKET_TYP ? verifyTicket(token) : verifyApp(token)
    },
    async issueTicket(principal, topics) {
      if (!ticketKeyP) throw new RelayError('NOT_FOUND', 'this edge issues no tickets (set EDGE_TICKET_SECRET)')
      return signTicket(await ticketKeyP, principal, topics, settings.EDGE_TICKET_TTL_S)
    },
  }
}

const cookieValue = (header: string | undefined, name: string): string | undefined => {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim())
      } catch {
        // A malformed %-escape must be a 401, not a crash.
        throw new RelayError('TOKEN_INVALID', `cookie ${name} is not validly encoded`)
      }
    }
  }
  return undefined
}

type TokenRequest = { header(name: string): string | undefined; query(name: string): string | undefined }

/** The token of an `Authorization: Bearer <token>` header (TOKEN_INVALID for any other form). */
export const bearerToken = (authz: string): string => {
  const m = /^Bearer\s+(\S+)$/i.exec(authz)
  if (!m) throw new RelayError('TOKEN_INVALID', 'Authorization must be "Bearer <token>"')
  return m[1]!
}

/** The token and where it came from: `Authorization: Bearer`, the `access_token` query parameter, or the cookie — in that order. */
export const tokenWithSource = (req: TokenRequest): { token: string; from: 'header' | 'query' | 'cookie' } => {
  const authz = req.header('authorization')
  if (authz) return { token: bearerToken(authz), from: 'header' }
  const query = req.query(QUERY.accessToken)
  if (query) return { token: query, from: 'query' }
  const cookie = cookieValue(req.header('cookie'), TOKEN_COOKIE)
  if (cookie) return { token: cookie, from: 'cookie' }
  throw new RelayError('TOKEN_MISSING', 'send a token: Authorization: Bearer, ?access_token= or cookie')
}

/** The token from `Authorization: Bearer`, the `access_token` query parameter, or the cookie — in that order. */
export const tokenFrom = (req: TokenRequest): string => tokenWithSource(req).token
