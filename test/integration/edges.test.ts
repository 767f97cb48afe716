import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { startRelay, type Relay } from '../../relay/relay.ts'
import { startProxy } from '../support/proxy.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { openStream } from '../support/sse-client.ts'
import { edgeEnv, relayConfig, testLog } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

let db: TestDb
let e1: NodeEdge
let e2: NodeEdge
let proxy: Awaited<ReturnType<typeof startProxy>>
let relay: Relay
beforeAll(async () => {
  db = await freshDatabase()
  e1 = await startNodeEdge(edgeEnv())
  e2 = await startNodeEdge(edgeEnv())
  proxy = await startProxy(e2.port) // the relay reaches edge 2 only through this proxy, which we can cut
  relay = await startRelay({
    config: relayConfig(db.url, `${e1.url},${proxy.url}`, { RELAY_SWEEP_MS: '500' }),
    log: testLog,
  })
})
afterAll(async () => {
  await relay?.stop()
  await proxy?.close()
  await e1?.close()
  await e2?.close()
  await db?.drop()
})

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const subscribe = async (edge: NodeEdge, tenant: string) =>
  openStream(`${edge.url}/v1/tenants/${tenant}/events`, { authorization: `Bearer ${await mintToken({ tenant })}`, 'last-event-id': '0' })
const publish = (tenant: string, i: number, notify = true) =>
  db.sql.begin(async (tx) => {
    if (!notify) await tx`select set_config('relay.notify', 'off', true)`
    await tx`select relay.publish(${tenant}, 't', ${tx.json({ i })})`
  })

describe('several edges', () => {
  it('one edge unreachable never stalls the other; it catches up in order when it returns', async () => {
    const on1 = await subscribe(e1, 'multi')
    const on2 = await subscribe(e2, 'multi')
    await publish('multi', 1)
    await on2.waitFor((m) => m.filter((x) => x.id).length === 1)
    proxy.block()
    for (let i = 2; i <= 30; i++) await publish('multi', i)
    await on1.waitFor((m) => m.filter((x) => x.id).length === 30)
    expect(on2.seqs()).toEqual([1])
    expect(relay.health().edges.find((e) => e.url === proxy.url)!.failures).toBeGreaterThan(0)
    proxy.unblock()
    await on2.waitFor((m) => m.filter((x) => x.id).length === 30, 20_000)
    expect(on1.seqs()).toEqual(range(1, 30))
    expect(on2.seqs()).toEqual(range(1, 30))
    // Each edge's cursor reaches 30 (saved just after the edge confirmed, so poll for it).
    const cursors = async () =>
      (await db.sql`select delivered::int from relay.cursors where tenant = 'multi' order by edge`).map((c) => c.delivered)
    for (let i = 0; i < 100 && (await cursors()).join() !== '30,30'; i++) await new Promise((r) => setTimeout(r, 50))
    expect(await cursors()).toEqual([30, 30])
    on1.close()
    on2.close()
  })

  it('the sweep delivers events whose nudge never came', async () => {
    const sub = await subscribe(e1, 'silent')
    for (let i = 1; i <= 5; i++) await publish('silent', i, false) // committed without NOTIFY
    await sub.waitFor((m) => m.filter((x) => x.id).length === 5, 10_000)
    expect(sub.seqs()).toEqual(range(1, 5))
    sub.close()
  })
})
