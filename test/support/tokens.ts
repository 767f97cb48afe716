import { SignJWT } from 'jose'

export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef'
export const RELAY_SECRET = 'test-relay-secret-0123456789abcdef'

/** An HS256 token as an app would mint it. */
export const mintToken = (
  claims: { tenant?: string; topics?: string[]; sub?: string } & Record<string, unknown>,
  { secret = JWT_SECRET, expiresIn = '1h' as string | number } = {},
) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret))
