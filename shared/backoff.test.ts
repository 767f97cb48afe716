import { describe, expect, it } from 'vitest'
import { backoffMs } from './backoff.ts'

describe('backoffMs', () => {
  it('grows exponentially from base and stays within [ceiling/2, ceiling]', () => {
    expect(backoffMs(0, 100, 5000, () => 0)).toBe(50)
    expect(backoffMs(0, 100, 5000, () => 1)).toBe(100)
    expect(backoffMs(3, 100, 5000, () => 1)).toBe(800)
    expect(backoffMs(3, 100, 5000, () => 0)).toBe(400)
  })
  it('is capped', () => {
    expect(backoffMs(50, 100, 5000, () => 1)).toBe(5000)
    expect(backoffMs(1000, 100, 5000, () => 0.5)).toBe(3750)
  })
})
