import { describe, expect, it } from 'vitest'
import { RETRY_JITTER, RETRY_MS } from '../../shared/protocol.ts'
import { jitteredRetryMs } from './stream.ts'

describe('jitteredRetryMs', () => {
  it('spreads retry: over RETRY_MS × [1, 1 + RETRY_JITTER), so a restarted room is not asked back all at once', () => {
    expect(jitteredRetryMs(() => 0)).toBe(RETRY_MS)
    expect(jitteredRetryMs(() => 0.5)).toBe(RETRY_MS * (1 + RETRY_JITTER / 2))
    expect(jitteredRetryMs(() => 1 - Number.EPSILON)).toBe(RETRY_MS * (1 + RETRY_JITTER) - 1)
    const drawn = new Set(Array.from({ length: 200 }, () => jitteredRetryMs()))
    expect(drawn.size).toBeGreaterThan(50)
    for (const ms of drawn) expect(ms >= RETRY_MS && ms < RETRY_MS * (1 + RETRY_JITTER)).toBe(true)
  })
})
