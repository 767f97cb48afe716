import { createHash, timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { RelayError } from '../../shared/errors.ts'
import { bearerToken } from '../auth.ts'

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * Guards `GET /metrics` with `EDGE_METRICS_TOKEN`: `Authorization: Bearer <token>` or a JSON 401. Without a token
 * configured it lets every scrape through, as on a port only Prometheus can reach. The comparison is between
 * SHA-256 digests in constant time, so neither the token's bytes nor its length leak through response timing.
 */
export const metricsAuth = (token: string | undefined): MiddlewareHandler => {
  const expected = token === undefined ? undefined : digest(token)
  return async (c, next) => {
    if (expected) {
      const authz = c.req.header('authorization')
      if (!authz) throw new RelayError('TOKEN_MISSING', 'metrics need a token: send Authorization: Bearer <EDGE_METRICS_TOKEN>')
      if (!timingSafeEqual(digest(bearerToken(authz)), expected))
        throw new RelayError('TOKEN_INVALID', 'metrics token does not match EDGE_METRICS_TOKEN')
    }
    await next()
  }
}
