import { SignJWT } from 'jose'
import { TICKET_TYP } from '../shared/protocol.ts'
import type { IssuedTicket, Principal } from './auth.ts'

const encoder = new TextEncoder()

/**
 * The HS256 key tickets are signed with: HMAC(secret, label). Derived rather than the secret itself, so that a
 * ticket never verifies as an app token signed with EDGE_JWT_SECRET, nor the other way round.
 */
export const ticketKey = async (secret: string): Promise<Uint8Array> => {
  const k = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, encoder.encode('edge-relay ticket key v1')))
}

/**
 * A ticket: usable to open a stream for `ttlS` seconds (never past the app token's own exp); a stream opened with
 * it lives until the app token's exp (`sexp`), then ends with `event: reauth`.
 */
export const signTicket = async (
  key: Uint8Array,
  principal: Principal,
  topics: string[] | undefined,
  ttlS: number,
): Promise<IssuedTicket> => {
  const nowS = Math.floor(Date.now() / 1000)
  const sexp = Math.floor(principal.expiresAt / 1000)
  const exp = Math.min(nowS + ttlS, sexp)
  const sub = principal.sub !== undefined ? { sub: principal.sub } : {}
  const ticket = await new SignJWT({ tenant: principal.tenant, ...(topics ? { topics } : {}), ...sub, sexp })
    .setProtectedHeader({ alg: 'HS256', typ: TICKET_TYP })
    .setIssuedAt(nowS)
    .setExpirationTime(exp)
    .sign(key)
  return { ticket, expiresAt: exp * 1000 }
}
