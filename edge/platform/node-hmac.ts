import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Hmac } from '../../shared/sign.ts'

/**
 * Relay signatures with node:crypto, for the relay and the Node edge. Web Crypto's HMAC runs on libuv's threadpool:
 * that round trip (a thread wake-up, then an event-loop wake-up) was ~0.5 ms of latency per relay post on each side
 * on the bench machine; node:crypto computes the same MAC synchronously in a few µs (docs/performance.md, change 5).
 */
export const nodeHmac: Hmac = {
  sign: (secret, data) => createHmac('sha256', secret).update(data).digest('hex'),
  verify: (secret, data, macHex) =>
    timingSafeEqual(createHmac('sha256', secret).update(data).digest(), Buffer.from(macHex, 'hex')),
}
