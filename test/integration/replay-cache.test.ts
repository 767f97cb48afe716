import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { postBatch } from '../../relay/forward.ts'
import { DEFAULTS } from '../../shared/protocol.ts'
import { edgeEnv } from '../support/stack.ts'
import { RELAY_SECRET } from '../support/tokens.ts'

/**
 * The edge's relay-signature replay cache must never refuse fresh, validly signed publishes, however many arrive
 * within one signature window: past its capacity it forgets the oldest signatures instead of answering 429.
 *
 * No variable sizes the cache, so this posts past the default capacity: ~100,000 posts, ~30 s here (the test
 * process is client and edge at once, ~3,000 signed posts/s on one core).
 */
const capacity = DEFAULTS.replayCacheEntries
const posts = capacity + 500
const tenants = 1_000
const concurrency = 32

let edge: NodeEdge
beforeAll(async () => {
  edge = await startNodeEdge(edgeEnv())
})
afterAll(() => edge?.close())

describe('relay signature replay cache', () => {
  it(`answers 200 to every one of ${posts} distinct signed publishes within one window (capacity ${capacity})`, async () => {
    let next = 0
    const refused: string[] = []
    const heads = new Set<number>()
    // Empty batches: each is a full signed publish (verified, admitted to the cache) that just returns the head.
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < posts) {
          const tenant = `rc-${next++ % tenants}`
          try {
            heads.add((await postBatch(edge.url, RELAY_SECRET, { tenant, events: [] })).head)
          } catch (err) {
            refused.push(err instanceof Error ? err.message : String(err))
          }
        }
      }),
    )
    expect(refused.slice(0, 3)).toEqual([])
    expect(refused).toHaveLength(0)
    expect([...heads]).toEqual([0])
  }, 300_000)
})
