import { createHash, timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { RelayError } from '../../shared/errors.ts'
import { bearerToken } from '../auth.ts'

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * Guards `GET /metrics` with `EDGE_METRICS_TOKEN` (`Authorization: Bearer`, else a JSON 401); without one, as on a port only Prometheus
 * reaches, every scrape passes. SHA-256 digests compared in constant time: neither the token's bytes nor its length leak through timing.
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
