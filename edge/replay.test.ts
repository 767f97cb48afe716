import { describe, expect, it } from 'vitest'
import { ReplayCache } from './replay.ts'

describe('ReplayCache', () => {
  it('refuses a signature seen within the window, forgets it after, and fails closed when full', () => {
    const c = new ReplayCache(2, 300)
    c.admit('a', 1000, 1000)
    expect(() => c.admit('a', 1000, 1100)).toThrow(expect.objectContaining({ code: 'SIGNATURE_REPLAYED' }))
    c.admit('b', 1001, 1100)
    expect(() => c.admit('c', 1002, 1100)).toThrow(expect.objectContaining({ code: 'TOO_MANY' }))
    c.admit('c', 1402, 1301) // 'a' (until 1300) has left the window
    expect(c.size).toBe(2)
  })
})
