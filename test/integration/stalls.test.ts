import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { startRelay, type Relay } from '../../relay/relay.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { openStream } from '../support/sse-client.ts'
import { edgeEnv, launchRelay, relayConfig, type Shape } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

/** Nothing gets stuck: an edge restart, an unreachable edge or a refused signature never stalls a tenant silently. */
let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

const setup = async () => {
  const db = await freshDatabase()
  cleanup.push(() => db.drop())
  return db
}

const publish = async (db: TestDb, tenant: string, n: number) => {
  for (let i = 0; i < n; i++) await db.sql`select relay.publish(${tenant}, 't', ${JSON.stringify({ i })}::text::jsonb)`
}

const resume = async (edge: NodeEdge, tenant: string, lastEventId: number) =>
  openStream(`${edge.url}/v1/tenants/${tenant}/events`, {
    authorization: `Bearer ${await mintToken({ tenant })}`,
    'last-event-id': String(lastEventId),
  })

/** A relay for `edge`, over HTTP (split) or in the same process (serve); its stop also stops what came with it. */
const relayFor = async (db: TestDb, edge: NodeEdge, shape: Shape, extra: Record<string, string> = {}): Promise<Relay> => {
  const running = await launchRelay(shape, db, edge, { RELAY_SWEEP_MS: '300', ...extra })
  return { ...running.relay, stop: running.stop }
}

describe.each<Shape>(['split', 'serve'])('a restarted edge gets its rooms back without new commits (%s)', (shape) => {
  it('a resume after the restart replays what the lost room held, while the tenant stays quiet', async () => {
    const db = await setup()
    let edge = await startNodeEdge(edgeEnv())
    const port = edge.port
    let relay = await relayFor(db, edge, shape)
    await publish(db, 'quiet', 5)
    const before = await resume(edge, 'quiet', 2)
    await before.waitFor((m) => m.length === 3)
    expect(before.seqs()).toEqual([3, 4, 5])
    before.close()

    // Split: only the edge restarts. Serve: the whole process does (its relay and edge together).
    if (shape === 'serve') await relay.stop()
    await edge.close()
    edge = await startNodeEdge(edgeEnv({ PORT: String(port) }))
    if (shape === 'serve') relay = await relayFor(db, edge, shape)
    cleanup.push(async () => {
      await relay.stop()
      await edge.close()
    })

    const after = await resume(edge, 'quiet', 2)
    await after.waitFor((m) => m.length === 3, 10_000)
    expect(after.seqs()).toEqual([3, 4, 5])
    // The refilled room serves a resume from its start too, and nothing arrives twice once live.
    const all = await resume(edge, 'quiet', 0)
    await all.waitFor((m) => m.length === 5)
    await publish(db, 'quiet', 1)
    await all.waitFor((m) => m.length === 6)
    await after.waitFor((m) => m.length === 4)
    expect(all.seqs()).toEqual([1, 2, 3, 4, 5, 6])
    expect(after.seqs()).toEqual([3, 4, 5, 6])
    after.close()
    all.close()
  })
})

describe('stalls are visible, and a refusal of the request is never blamed on events', () => {
  it('an unreachable edge shows as delivery lag (metric and /healthz) within seconds, and clears once it answers', async () => {
    const db = await setup()
    let edge = await startNodeEdge(edgeEnv())
    const port = edge.port
    const relay = await relayFor(db, edge, 'split')
    cleanup.push(async () => {
      await relay.stop()
      await edge.close()
    })
    await edge.close()
    await publish(db, 'lagging', 3)
    const lag = async () => (await relay.metrics.registry.getSingleMetric('edge_relay_delivery_lag_seconds')!.get()).values[0]?.value ?? 0
    await expect.poll(lag, { timeout: 10_000, interval: 200 }).toBeGreaterThan(0.5)
    const health = relay.health()
    expect(health.edges[0]).toMatchObject({ url: edge.url })
    expect(health.edges[0]!.lagSeconds).toBeGreaterThan(0.5)
    expect(health.edges[0]!.failures).toBeGreaterThan(0)

    edge = await startNodeEdge(edgeEnv({ PORT: String(port) }))
    const sub = await resume(edge, 'lagging', 0)
    await sub.waitFor((m) => m.length === 3, 10_000)
    await expect.poll(lag, { timeout: 10_000, interval: 200 }).toBe(0)
    sub.close()
  })

  it('a relay whose RELAY_SECRET the edge refuses retries (no markers); fixed, the events arrive as they are', async () => {
    const db = await setup()
    const edge = await startNodeEdge(edgeEnv())
    cleanup.push(() => edge.close())
    const lines: { level: string; msg: string }[] = []
    const wrong = await startRelay({
      config: relayConfig(db.url, edge.url, { RELAY_SECRET: 'a-wrong-relay-secret-of-enough-length-0123', RELAY_SWEEP_MS: '300' }),
      log: (level, msg) => lines.push({ level, msg }),
    })
    await publish(db, 'refused', 2)
    await expect.poll(() => lines.some((l) => /refused the signature: does RELAY_SECRET match/.test(l.msg)), { timeout: 10_000 }).toBe(true)
    expect(lines.some((l) => /marker/.test(l.msg))).toBe(false)
    await wrong.stop()

    const right = await relayFor(db, edge, 'split')
    cleanup.push(() => right.stop())
    const sub = await resume(edge, 'refused', 0)
    await sub.waitFor((m) => m.length === 2, 10_000)
    expect(sub.messages.map((m) => [m.id, m.event])).toEqual([
      ['1', 't'],
      ['2', 't'],
    ])
    sub.close()
  })

  it('an edge without POST /internal/hello (older than the relay) gets nothing, and the log says why', async () => {
    const db = await setup()
    const posts: string[] = []
    const old = createServer((req, res) => {
      posts.push(req.url ?? '')
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route for POST ${req.url}` } }))
    })
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', r))
    cleanup.push(() => new Promise<void>((r) => old.close(() => r())))
    const url = `http://127.0.0.1:${(old.address() as AddressInfo).port}`
    const lines: { msg: string; fields?: Record<string, unknown> }[] = []
    const relay = await startRelay({
      config: relayConfig(db.url, url, { RELAY_SWEEP_MS: '200' }),
      log: (_, msg, fields) => lines.push({ msg, ...(fields ? { fields } : {}) }),
    })
    cleanup.push(() => relay.stop())
    await publish(db, 'old-edge', 2)
    await expect.poll(() => posts.filter((p) => p === '/internal/hello').length, { timeout: 5_000 }).toBeGreaterThan(2)
    expect(posts.filter((p) => p === '/internal/publish')).toEqual([])
    expect(
      lines.filter((l) => /no such route \(404\): is EDGE_URL the edge's base URL, and is the edge as new as this relay/.test(l.msg)),
    ).toHaveLength(1)
  })
})
