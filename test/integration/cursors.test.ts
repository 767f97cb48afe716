import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../support/stack.ts'

/** The relay writes delivered cursors behind delivery, in batches: what it confirmed is saved by the time it stops. */
let stack: Stack
beforeAll(async () => {
  stack = await startStack()
})
afterAll(() => stack.stop())

describe('delivered cursors', () => {
  it('are saved for every tenant once the edge confirmed, at the latest when the relay stops', async () => {
    const tenants = ['c1', 'c2', 'c3']
    const streams = await Promise.all(tenants.map((t) => stack.subscribe(t)))
    for (let i = 0; i < 30; i++) await stack.publish(tenants[i % 3]!, 'x', { i })
    await Promise.all(streams.map((s) => s.waitFor((m) => m.filter((e) => e.id !== undefined).length === 10)))
    await stack.stopRelay()
    const rows = await stack.db.sql<{ tenant: string; delivered: string }[]>`
      select tenant, delivered from relay.cursors order by tenant`
    expect(rows.map((r) => [r.tenant, Number(r.delivered)])).toEqual([
      ['c1', 10],
      ['c2', 10],
      ['c3', 10],
    ])
    for (const s of streams) s.close()
  })
})
