import { RelayError } from '../shared/errors.ts'

/**
 * Relay signatures seen within the signature window: a signed request captured on the wire and sent again is
 * refused. Bounded: entries leave when their window has passed; if it is full of live entries the edge refuses
 * (fail closed, 429) rather than forget one. Per edge instance — a replay to another instance still only re-applies
 * seqs the room already has (publish is idempotent), so replay protection is defence in depth.
 */
export class ReplayCache {
  /** mac → unix second after which it can no longer verify (insertion order ≈ time order). */
  private readonly seen = new Map<string, number>()

  constructor(
    private readonly capacity: number,
    private readonly windowS: number,
  ) {}

  get size(): number {
    return this.seen.size
  }

  /** Records a verified signature; throws SIGNATURE_REPLAYED if it was seen before. */
  admit(mac: string, t: number, nowS = Math.floor(Date.now() / 1000)): void {
    this.sweep(nowS)
    if (this.seen.has(mac)) throw new RelayError('SIGNATURE_REPLAYED', 'this signed request was already received: sign each attempt anew')
    if (this.seen.size >= this.capacity)
      throw new RelayError('TOO_MANY', 'too many signed requests within the signature window: slow down', { 'retry-after': '1' })
    this.seen.set(mac, t + this.windowS)
  }

  private sweep(nowS: number) {
    for (const [mac, until] of this.seen) {
      if (until >= nowS) break
      this.seen.delete(mac)
    }
  }
}
