import { bodyLimit } from 'hono/body-limit'
import { RelayError } from '../shared/errors.ts'

export interface ConnectionLimitOptions {
  perTenant: number
  /** Per token subject (`sub`) within a tenant; tokens without `sub` count only against the tenant. */
  perSubject: number
}

/** Retry-After (seconds) sent with a 429: a slot frees when some stream ends, which no one can predict. */
const RETRY_AFTER_S = 5
const TIP = 'close one or retry later'

/**
 * Live stream counts on this edge instance, per tenant and per subject. Counted in the app layer, around whatever
 * stream the Rooms implementation returns, so it works for every implementation.
 */
export class ConnectionLimits {
  private readonly tenants = new Map<string, number>()
  private readonly subjects = new Map<string, number>()

  constructor(private readonly o: ConnectionLimitOptions) {}

  /** Live streams of `tenant` on this instance. */
  count(tenant: string): number {
    return this.tenants.get(tenant) ?? 0
  }

  /** Takes a slot or throws TOO_MANY; returns the (idempotent) release. */
  acquire(tenant: string, sub: string | undefined): () => void {
    const retry = { 'retry-after': String(RETRY_AFTER_S) }
    const subject = sub === undefined ? undefined : `${tenant}\u0000${sub}`
    if (this.count(tenant) >= this.o.perTenant)
      throw new RelayError('TOO_MANY', `tenant has ${this.o.perTenant} live streams, the most allowed: ${TIP}`, retry)
    if (subject !== undefined && (this.subjects.get(subject) ?? 0) >= this.o.perSubject)
      throw new RelayError('TOO_MANY', `this token subject has ${this.o.perSubject} live streams, the most allowed: ${TIP}`, retry)
    bump(this.tenants, tenant, 1)
    if (subject !== undefined) bump(this.subjects, subject, 1)
    let released = false
    return () => {
      if (released) return
      released = true
      bump(this.tenants, tenant, -1)
      if (subject !== undefined) bump(this.subjects, subject, -1)
    }
  }
}

const bump = (m: Map<string, number>, key: string, by: number) => {
  const n = (m.get(key) ?? 0) + by
  // No entry per idle tenant: the maps stay as small as the live set.
  if (n <= 0) m.delete(key)
  else m.set(key, n)
}

/**
 * Headers for a refusal sent before the request body was read: the unread rest of the body would otherwise be
 * parsed as the next request on a kept-alive connection, so the connection ends with this response.
 */
export const UNREAD_BODY = { connection: 'close' } as const

/** A body limit whose refusal is TOO_LARGE, sent with UNREAD_BODY: "<what> body over <maxSize> bytes<tip>". */
export const limitBody = (maxSize: number, what: string, tip = '') =>
  bodyLimit({
    maxSize,
    onError: () => Promise.reject(new RelayError('TOO_LARGE', `${what} body over ${maxSize} bytes${tip}`, UNREAD_BODY)),
  })
