import { describe, expect, it } from 'vitest'
import { ReplayCache } from './signature-replay.ts'

const replayed = expect.objectContaining({ code: 'SIGNATURE_REPLAYED' })

describe('ReplayCache', () => {
  it('refuses a signature seen within the window and forgets it after', () => {
    const c = new ReplayCache(10, 300)
    c.admit('a', 1000, 1000)
    expect(() => c.admit('a', 1000, 1100)).toThrow(replayed)
    expect(() => c.admit('a', 1000, 1300)).toThrow(replayed) // until 1300 inclusive: it still verifies then
    c.admit('a', 1000, 1301) // past its window: the signature itself no longer verifies, so it is not held
    expect(c.size).toBe(1)
  })

  it('admits capacity + N distinct fresh signatures at one instant, never holding more than capacity', () => {
    const capacity = 100
    const c = new ReplayCache(capacity, 300)
    for (let i = 0; i < capacity * 5 + 7; i++) {
      expect(() => c.admit(`mac-${i}`, 1000, 1000)).not.toThrow()
      expect(c.size).toBe(Math.min(i + 1, capacity))
    }
  })

  it('still refuses a replay of a recent signature once full, evicting the oldest first', () => {
    const c = new ReplayCache(3, 300)
    for (const mac of ['a', 'b', 'c', 'd']) c.admit(mac, 1000, 1000) // 'a' evicted
    expect(() => c.admit('d', 1000, 1001)).toThrow(replayed)
    expect(() => c.admit('c', 1000, 1001)).toThrow(replayed)
    expect(() => c.admit('b', 1000, 1001)).toThrow(replayed)
    // A refused replay evicts nothing: the three are all still held.
    expect(c.size).toBe(3)
    // The trade-off: the evicted one is admitted again within its window (the room ignores its seqs).
    c.admit('a', 1000, 1001) // evicts 'b', the oldest now
    expect(c.size).toBe(3)
    c.admit('b', 1000, 1001)
    expect(() => c.admit('a', 1000, 1001)).toThrow(replayed)
  })

  it('sweeps expired entries, so a quiet edge holds nothing old', () => {
    const c = new ReplayCache(1000, 300)
    for (let i = 0; i < 50; i++) c.admit(`old-${i}`, 1000 + i, 1000 + i) // until 1300 … 1349
    expect(c.size).toBe(50)
    c.admit('new-0', 1325, 1325) // 'old-0' … 'old-24' (until < 1325) have left
    expect(c.size).toBe(26)
    c.admit('new-1', 2000, 2000)
    expect(c.size).toBe(1)
    expect(() => c.admit('new-1', 2000, 2000)).toThrow(replayed)
  })

  it('refuses a capacity it cannot keep', () => {
    expect(() => new ReplayCache(0, 300)).toThrow(RangeError)
  })
})
