import { expect } from 'vitest'
import { RETRY_JITTER, RETRY_MS } from '../../shared/protocol.ts'

/**
 * Checks that a stream's text starts with the edge's `retry:` line, whose value is this stream's own (RETRY_MS
 * stretched by up to RETRY_JITTER: edge/room/stream.ts), and returns the text after it.
 */
export const afterRetry = (text: string): string => {
  const retry = /^retry: (\d+)\n\n/.exec(text)
  expect(retry, `no retry: line first in ${JSON.stringify(text.slice(0, 80))}`).not.toBeNull()
  const ms = Number(retry![1])
  expect(ms).toBeGreaterThanOrEqual(RETRY_MS)
  expect(ms).toBeLessThan(RETRY_MS * (1 + RETRY_JITTER))
  return text.slice(retry![0].length)
}
