import { RelayError } from '../shared/errors.ts'

/** Signatures an edge instance remembers (~100 bytes each): far more than a signature window of deliveries. */
export const REPLAY_CACHE_ENTRIES = 100_000

/**
 * Relay signatures seen within the signature window: a signed request captured on the wire and sent again while
 * its signature is still held is refused (SIGNATURE_REPLAYED).
 *
 * Bounded in memory, never in rate: entries leave when their window has passed, and when the cache is full the
 * oldest entry (Map insertion order) is evicted to make room. A fresh, validly signed request is never refused for
 * volume: only a holder of RELAY_SECRET can make one, so a cap on them protects nothing and would stall delivery
 * for every tenant behind a busy edge. The cost: a signature evicted before its window ends could be replayed
 * until the window ends. That only re-sends a batch the relay already sent — publish is idempotent by seq, so the
 * room ignores what it has (and a room that lost its memory meanwhile gets committed events, as the relay's own
 * resend would give it). Per edge instance for the same reason: replay protection is defence in depth.
 */
export class ReplayCache {
  /** mac → unix second after which it can no longer verify (insertion order ≈ time order). */
  private readonly seen = new Map<string, number>()

  constructor(
    private readonly capacity: number,
    private readonly windowS: number,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`replay cache capacity must be a positive integer, got ${capacity}`)
  }

  get size(): number {
    return this.seen.size
  }

  /** Records a verified signature; throws SIGNATURE_REPLAYED if it is still held from before. */
  admit(mac: string, t: number, nowS = Math.floor(Date.now() / 1000)): void {
    this.sweep(nowS)
    if (this.seen.has(mac)) throw new RelayError('SIGNATURE_REPLAYED', 'this signed request was already received: sign each attempt anew')
    // Full of live entries: forget the oldest rather than refuse (see the class comment for why that is safe).
    for (const oldest of this.seen.keys()) {
      if (this.seen.size < this.capacity) break
      this.seen.delete(oldest)
    }
    this.seen.set(mac, t + this.windowS)
  }

  /** Drops expired entries from the front; stops at the first live one (later ones are, nearly always, younger). */
  private sweep(nowS: number) {
    for (const [mac, until] of this.seen) {
      if (until >= nowS) break
      this.seen.delete(mac)
    }
  }
}
