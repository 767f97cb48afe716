import { describe, expect, it } from 'vitest'
import { RETRY_JITTER, RETRY_MS } from '../../shared/protocol.ts'
import { restartStorm } from '../../scripts/restart-storm.ts'

/**
 * A deploy or an eviction under a busy room, in real workerd: 1,000 EventSource-like clients on one tenant, events
 * flowing, the room's Durable Object reset. Each client reconnects after its own `retry:` with Last-Event-ID and
 * resumes from the room's SQLite history. How long that takes is measured by the bench (restart_storm).
 */
describe('a room restarted under 1,000 subscribers (Workers, local workerd)', () => {
  it('brings every client back with every event exactly once, in order', async () => {
    const { summary, clients, head } = await restartStorm({ clients: 1000 })
    console.log(`restart storm: ${JSON.stringify(summary)}`)
    // None refused: a browser's EventSource gives up for good on a refusal (a 503 while the room restarts).
    expect(clients.filter((c) => c.failed).map((c) => c.failed)).toEqual([])
    // Every client got something from the room's stored history (published while it was away), then live events.
    expect(summary.replayed.min).toBeGreaterThan(0)
    const all = Array.from({ length: head }, (_, i) => i + 1)
    const wrong = clients.filter((c) => c.seqs.length !== head || c.seqs.some((s, i) => s !== all[i]))
    expect(wrong.slice(0, 3).map((c) => c.seqs)).toEqual([])
    expect({ lost: summary.lost, duplicated: summary.duplicated, disordered: summary.disordered }).toEqual({
      lost: 0,
      duplicated: 0,
      disordered: 0,
    })
    // Each stream's retry: is its own, within RETRY_MS × [1, 1 + RETRY_JITTER): the reconnects spread out.
    const retries = clients.flatMap((c) => c.retries)
    expect(retries.length).toBeGreaterThanOrEqual(2 * clients.length) // one per stream, before and after the restart
    expect(retries.filter((ms) => ms < RETRY_MS || ms >= RETRY_MS * (1 + RETRY_JITTER))).toEqual([])
    expect(new Set(retries).size).toBeGreaterThan(100)
  }, 180_000)
})
